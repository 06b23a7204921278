// `hybrid-guard eval` on real Istio manifests (../shared/corpus, see its README): every file is
// read (exit 0 or 1, never 2), and the documented hybrid example is admitted whole.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "test/cli/cli_helpers.h"

using namespace hybrid_guard;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path corpusDir() {
  return test::sharedDir() / "corpus";
}

std::vector<fs::path> corpusFiles(const std::string& folder) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(corpusDir() / folder)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("corpus: eval reads every file, named explicitly, exit 0 or 1", "[cli][corpus]") {
  for (const char* folder : {"istio-inject", "istio-samples", "istio-analyzer", "istio-docs"}) {
    DYNAMIC_SECTION(folder) {
      auto files = corpusFiles(folder);
      REQUIRE(!files.empty());
      size_t objects = 0;
      for (const auto& file : files) {
        auto run = test::hybridGuard({"eval", "-o", "json", file.string()});
        INFO(file.string() << "\nstderr: " << run.err.substr(0, 500));
        CHECK((run.exitCode == 0 || run.exitCode == 1));
        CHECK(run.err.empty());
        json output;
        REQUIRE_NOTHROW(output = json::parse(run.out));
        CHECK(output["summary"]["objects"] == output["results"].size());
        objects += output["results"].size();
      }
      CHECK(objects >= files.size());
    }
  }
  SECTION("the *.injected files are among them") {
    auto files = corpusFiles("istio-inject");
    CHECK(std::count_if(files.begin(), files.end(),
                        [](const fs::path& p) { return p.extension() == ".injected"; }) >= 100);
  }
}

TEST_CASE("corpus: eval reads the whole corpus as directories", "[cli][corpus]") {
  auto run = test::hybridGuard({"eval", "-o", "json", corpusDir().string()});
  INFO("stderr: " << run.err.substr(0, 500));
  CHECK((run.exitCode == 0 || run.exitCode == 1));
  json output;
  REQUIRE_NOTHROW(output = json::parse(run.out));
  // Only .yaml/.yml/.json files are read from a directory: never an *.injected one.
  for (const auto& result : output["results"]) {
    std::string source = result["source"];
    CHECK(source.find(".injected:") == std::string::npos);
  }
}

TEST_CASE("corpus: the documented hybrid example admits every object", "[cli][corpus]") {
  // istio.io "Ingress Sidecar TLS Termination", applied with `kubectl -n test`.
  test::TempDir dir;
  auto policy = dir.write("policy.yaml", R"(apiVersion: hybrid-guard.io/v1alpha1
kind: HybridModePolicy
metadata:
  name: docs
spec:
  namespaces:
  - name: test
  tls:
    certificatePaths:
    - /etc/istio/tls-certs/
    - /etc/istio/tls-ca-certs/
)");
  auto example = corpusDir() / "istio-docs" / "sidecar-tls-termination.yaml";
  auto run = test::hybridGuard(
      {"eval", "-o", "json", "--policy", policy.string(), "--namespace", "test", example.string()});
  INFO("stdout: " << run.out << "\nstderr: " << run.err);
  CHECK(run.exitCode == 0);
  json output;
  REQUIRE_NOTHROW(output = json::parse(run.out));
  CHECK(output["summary"] == json{{"objects", 6}, {"admitted", 6}, {"denied", 0}, {"warnings", 0}});
  std::vector<std::string> kinds;
  for (const auto& result : output["results"]) {
    INFO(result.dump());
    CHECK(result["allowed"] == true);
    CHECK(result["namespace"] == "test");
    CHECK(result["violations"].empty());
    CHECK(result["warnings"].empty());
    kinds.push_back(result["kind"]);
  }
  CHECK(kinds == std::vector<std::string>{"PeerAuthentication", "PeerAuthentication",
                                          "ServiceAccount", "Service", "Deployment", "Sidecar"});
  CHECK(output["results"][5]["name"] == "ingress-sidecar");
  CHECK(output["results"][5]["apiVersion"] == "networking.istio.io/v1alpha3");

  SECTION("and its Sidecar then selects the Deployment's pods: the pod is mutated") {
    auto pod = dir.write("pod.yaml", R"(apiVersion: v1
kind: Pod
metadata:
  name: httpbin-0
  labels: {app: httpbin, version: v1}
  annotations:
    sidecar.istio.io/userVolumeMount: '{"tls-secret":{"mountPath":"/etc/istio/tls-certs/","readOnly":true},"tls-ca-secret":{"mountPath":"/etc/istio/tls-ca-certs/","readOnly":true}}'
spec:
  containers:
  - {name: httpbin, image: docker.io/kennethreitz/httpbin}
)");
    auto withPod = test::hybridGuard({"eval", "-o", "json", "--policy", policy.string(),
                                      "--namespace", "test", example.string(), pod.string()});
    CHECK(withPod.exitCode == 0);
    auto results = json::parse(withPod.out)["results"];
    REQUIRE(results.size() == 7);
    CHECK(results[6]["warnings"].empty());
    CHECK(
        results[6]["patch"] ==
        json::parse(
            R"([{"op":"add","path":"/metadata/annotations/hybrid-guard.io~1sidecar","value":"ingress-sidecar"},
                          {"op":"add","path":"/metadata/annotations/proxy.istio.io~1config","value":"{\"proxyMetadata\":{\"SIDECAR_IN_HYBRID_MODE\":\"true\"}}"}])"));
  }
}
