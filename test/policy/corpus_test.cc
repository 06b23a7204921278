// Istio's own manifests (../shared/corpus): every file reads; injected workloads are
// recognised; mutation works on really injected pods and merges into real ProxyConfigs.
#include <catch2/catch.hpp>

#include <filesystem>

#include "cli/input_reader.h"
#include "policy/workload_view.h"
#include "test/support/engine_helpers.h"
#include "test/support/test_support.h"

using namespace hybrid_guard;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> corpusFiles(const std::string& folder) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(test::sharedDir() / "corpus" / folder)) {
    if (e.is_regular_file() && e.path().filename() != "README.md") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<cli::InputObject> read(const fs::path& file) {
  auto objects = cli::readText(test::readFile(file), file.string());
  if (!objects) FAIL(file.string() + ": " + objects.error()[0].str());
  return std::move(*objects);
}

struct Workload {
  std::string source;
  json object;
  policy::PodLocation location;
};

std::vector<Workload> workloadsOf(const fs::path& file) {
  std::vector<Workload> out;
  for (auto& input : read(file)) {
    if (!input.value.is_object()) continue;
    std::string apiVersion = input.value.value("apiVersion", "");
    auto slash = apiVersion.find('/');
    std::string group = slash == std::string::npos ? "" : apiVersion.substr(0, slash);
    if (auto location = policy::podLocationFor(group, input.value.value("kind", ""))) {
      out.push_back({input.source, input.value, *location});
    }
  }
  return out;
}

}  // namespace

TEST_CASE("every corpus file reads", "[corpus]") {
  size_t files = 0, objects = 0;
  for (const char* folder : {"istio-inject", "istio-samples", "istio-analyzer", "istio-docs"}) {
    for (const auto& file : corpusFiles(folder)) {
      INFO(file.string());
      auto read = cli::readText(test::readFile(file), file.string());
      REQUIRE(read.ok());
      objects += read->size();
      ++files;
    }
  }
  CHECK(files == 229);
  CHECK(objects == 299);
}

TEST_CASE("injected workloads: the istio-proxy container is found, no flag is set", "[corpus]") {
  size_t injected = 0, native = 0;
  for (const auto& file : corpusFiles("istio-inject")) {
    if (file.extension() != ".injected") continue;
    for (const auto& w : workloadsOf(file)) {
      INFO(w.source);
      auto read = policy::readWorkload(w.object, w.location, w.object["kind"].get<std::string>(),
                                       "default");
      REQUIRE(read.invalid.empty());
      CHECK_FALSE(read.view.pod.flagPath.has_value());
      if (read.view.pod.proxy) {
        ++injected;
        if (read.view.pod.proxy->init) ++native;
      }
    }
  }
  CHECK(injected >= 100);
  CHECK(native >= 1);
}

TEST_CASE("mutation of really injected pods applies and is idempotent", "[corpus][mutation]") {
  auto p = test::policyFrom("  namespaces: [{pattern: \".*\", maxWorkloads: 5}]\n");
  size_t mutated = 0, merged = 0;
  for (const auto& file : corpusFiles("istio-inject")) {
    if (file.extension() != ".injected") continue;
    for (auto w : workloadsOf(file)) {
      if (w.object["kind"] != "Pod" && w.object["kind"] != "Deployment") continue;
      // Treat each template as the pod the ReplicaSet would create from it.
      json pod = w.object;
      if (w.object["kind"] == "Deployment") {
        pod = {{"apiVersion", "v1"},
               {"kind", "Pod"},
               {"metadata", w.object["spec"]["template"].value("metadata", json::object())},
               {"spec", w.object["spec"]["template"]["spec"]}};
        pod["metadata"]["name"] = "from-template";
      }
      auto loc = *policy::podLocationFor("", "Pod");
      auto view = policy::readWorkload(pod, loc, "Pod", "default").view;
      if (!view.pod.proxy || view.pod.hostNetwork || view.pod.optedOutOfInjection()) continue;
      INFO(w.source);
      policy::State state;
      state.upsert({view.namespace_, "hybrid", std::nullopt, {}});
      test::TestRequest r(pod);
      r.request.namespace_ = view.namespace_;
      auto d = policy::decide(r.request, *p, state, policy::Phase::Mutate);
      REQUIRE_FALSE(d.patch.empty());
      json out = pod.patch(d.patch);
      const json& containers = out["spec"][view.pod.proxy->init ? "initContainers" : "containers"];
      const json& env = containers[view.pod.proxy->index]["env"];
      bool hasFlag = std::any_of(env.begin(), env.end(), [](const json& e) {
        return e.value("name", "") == "SIDECAR_IN_HYBRID_MODE" && e.value("value", "") == "true";
      });
      CHECK(hasFlag);
      CHECK(out["metadata"]["annotations"]["hybrid-guard.io/sidecar"] == "hybrid");
      auto config =
          policy::parseProxyConfig(out["metadata"]["annotations"]["proxy.istio.io/config"]);
      REQUIRE(config);
      CHECK((*config)["proxyMetadata"]["SIDECAR_IN_HYBRID_MODE"] == "true");
      // Every setting of an existing ProxyConfig survives the merge.
      if (auto before = view.pod.annotation("proxy.istio.io/config")) {
        auto original = policy::parseProxyConfig(*before);
        REQUIRE(original);
        for (const auto& [key, value] : original->items()) {
          if (key != "proxyMetadata") CHECK((*config)[key] == value);
        }
        ++merged;
      }
      test::TestRequest again(out);
      again.request.namespace_ = view.namespace_;
      CHECK(policy::decide(again.request, *p, state, policy::Phase::Mutate).patch.empty());
      ++mutated;
    }
  }
  CHECK(mutated >= 50);
  CHECK(merged >= 2);
}

TEST_CASE("the documented hybrid example is admitted", "[corpus]") {
  auto p = test::policyFrom(R"(
  namespaces: [test]
  tls:
    certificatePaths: [/etc/istio/tls-certs/, /etc/istio/tls-ca-certs/]
)");
  policy::State state;
  auto objects = read(test::sharedDir() / "corpus/istio-docs/sidecar-tls-termination.yaml");
  bool sawSidecar = false;
  for (auto& input : objects) {
    test::TestRequest r(input.value);
    r.request.namespace_ = "test";  // the task applies everything with kubectl -n test
    auto d = policy::decide(r.request, *p, state);
    INFO(input.source);
    CHECK(d.allowed);
    CHECK(d.violations.empty());
    if (input.value["kind"] == "Sidecar") {
      sawSidecar = true;
      CHECK(d.evaluated);
      policy::applyChange(state, d.change);
    }
  }
  CHECK(sawSidecar);
  CHECK(state.namespaceCount("test") == 1);
  const auto* admitted = state.find("test", "ingress-sidecar");
  REQUIRE(admitted);
  CHECK(admitted->selector == policy::Labels{{"app", "httpbin"}, {"version", "v1"}});
}
