// The per-review core of the webhook, as the server runs it for one request body: decode the
// AdmissionReview, decide (state store, metrics), encode the answer. Google Benchmark for wall
// time; `--profile` runs a fixed number of reviews for callgrind's instruction counts:
//
//   valgrind --tool=callgrind --toggle-collect='*AdmissionService::handle*'
//            review_bench --profile pod validate 10000 200
//
// The state is the one hybrid Sidecar that selects the reviewed pod, alone or with hybrid
// Sidecars in team-N namespaces (100 each) up to 10,000 hybrid workloads.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "cli/evaluator.h"
#include "cli/input_reader.h"
#include "webhook/admission_service.h"

namespace {

using namespace hybrid_guard;

std::string benchDir() {
  return HG_BENCH_DIR;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    std::exit(2);
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::shared_ptr<const policy::Policy> benchPolicy() {
  auto loaded = policy::loadPolicyFile(benchDir() + "/reviews/policy.yaml");
  if (!loaded) {
    for (const auto& e : loaded.error()) std::cerr << e.str() << "\n";
    std::exit(2);
  }
  return *loaded;
}

policy::State benchState(size_t workloads) {
  policy::State state;
  auto inputs = cli::readInputs({benchDir() + "/reviews/state-1.yaml"}, std::cin);
  if (!inputs) std::exit(2);
  cli::seedState(*inputs, "default", state);
  // The reviewed Sidecar takes one more slot once admitted.
  for (size_t i = 0; state.total() + 1 < workloads; ++i) {
    policy::HybridSidecar s;
    s.namespace_ = "team-" + std::to_string(i / 100);
    s.name = "sc-" + std::to_string(i);
    s.selector = policy::Labels{{"app", "app-" + std::to_string(i)}};
    s.certificatePaths = {"/etc/istio/tls-certs/tls.crt", "/etc/istio/tls-certs/tls.key"};
    state.upsert(std::move(s));
  }
  return state;
}

// One server's worth of service objects, as `serve` wires them (decision log off, as below info).
struct Service {
  explicit Service(size_t workloads)
      : holder(benchPolicy()),
        store(benchState(workloads)),
        metrics(*holder.get()),
        service(holder, store, metrics, {}) {}
  webhook::PolicyHolder holder;
  webhook::StateStore store;
  webhook::ServerMetrics metrics;
  webhook::AdmissionService service;
};

const char* const kReviews[] = {"sidecar", "pod"};
const char* const kEndpoints[] = {"validate", "mutate"};

std::string reviewBody(int review) {
  return readFile(benchDir() + "/reviews/" + kReviews[review] + "-create.json");
}

// Args: review (0 sidecar, 1 pod), endpoint (0 validate, 1 mutate), hybrid workloads in state.
void BM_Review(benchmark::State& st) {
  int review = static_cast<int>(st.range(0));
  auto endpoint = st.range(1) == 0 ? webhook::Endpoint::Validate : webhook::Endpoint::Mutate;
  Service s(static_cast<size_t>(st.range(2)));
  std::string body = reviewBody(review);
  auto first = s.service.handle(endpoint, body);
  if (first.status != 200) {
    st.SkipWithError(("status " + std::to_string(first.status) + ": " + first.body).c_str());
    return;
  }
  for (auto _ : st) {
    auto response = s.service.handle(endpoint, body);
    benchmark::DoNotOptimize(response.body.data());
  }
  st.SetLabel(std::string(kReviews[review]) + " " + kEndpoints[st.range(1)] + ", " +
              std::to_string(body.size()) + " B, answer " + std::to_string(first.body.size()) +
              " B");
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * body.size()));
}
BENCHMARK(BM_Review)
    ->ArgNames({"review", "endpoint", "workloads"})
    ->ArgsProduct({{0, 1}, {0, 1}, {1, 10000}})
    ->Unit(benchmark::kMicrosecond);

// The decision log line, for when the server logs at info (its default).
void BM_DecisionLogLine(benchmark::State& st) {
  webhook::DecisionRecord r;
  r.uid = "0c9b7e55-71d2-4f0e-8a1b-5e2d9c4f3b77";
  r.endpoint = "validate";
  r.kind = "Pod";
  r.namespace_ = "hello";
  r.name = "hellopod";
  r.operation = "CREATE";
  r.user = "system:serviceaccount:kube-system:replicaset-controller";
  r.decision = "warn";
  r.rules = {"certificate-not-mounted"};
  r.latencyMicros = 12;
  for (auto _ : st) {
    std::string line = webhook::formatDecisionLog(r);
    benchmark::DoNotOptimize(line.data());
  }
}
BENCHMARK(BM_DecisionLogLine)->Unit(benchmark::kMicrosecond);

int profile(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: review_bench --profile sidecar|pod validate|mutate WORKLOADS N\n";
    return 2;
  }
  int review = std::strcmp(argv[2], "pod") == 0 ? 1 : 0;
  auto endpoint =
      std::strcmp(argv[3], "mutate") == 0 ? webhook::Endpoint::Mutate : webhook::Endpoint::Validate;
  Service s(std::stoul(argv[4]));
  std::string body = reviewBody(review);
  long n = std::stol(argv[5]);
  size_t bytes = 0;
  for (long i = 0; i < n; ++i) bytes += s.service.handle(endpoint, body).body.size();
  std::printf("%ld reviews, %zu answer bytes\n", n, bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--profile") == 0) return profile(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
