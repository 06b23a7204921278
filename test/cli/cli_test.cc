// The command line of DESIGN §7: exit codes, -o json and text output, how inputs are read
// (sources, directories, stdin, AdmissionReviews, --state, --namespace), lint, version, bad usage
// and bad input.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "test/cli/cli_helpers.h"

using namespace hybrid_guard;
using nlohmann::json;
using nlohmann::ordered_json;
using test::hybridGuard;
using test::hybridGuardIn;

namespace {

const char* kPolicy = R"(apiVersion: hybrid-guard.io/v1alpha1
kind: HybridModePolicy
metadata:
  name: cli
spec:
  namespaces:
  - name: payments
  tls:
    certificatePaths: [/etc/istio/tls-certs/, /etc/istio/tls-ca-certs/]
)";

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// A hybrid Sidecar every rule of kPolicy accepts: 15 lines with a namespace, 14 without.
std::string sidecar(const std::string& name, const std::string& ns = "payments") {
  std::string text = R"(apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: NAME
  namespace: NS
spec:
  workloadSelector:
    labels:
      app: NAME
  ingress:
  - port: {number: 8443, protocol: HTTPS, name: external}
    tls:
      mode: SIMPLE
      serverCertificate: /etc/istio/tls-certs/tls.crt
      privateKey: /etc/istio/tls-certs/tls.key
)";
  if (ns.empty()) text = replaceAll(text, "  namespace: NS\n", "");
  return replaceAll(replaceAll(text, "NAME", name), "NS", ns);
}

std::string configMap(const std::string& name, const std::string& ns = "") {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n" +
         (ns.empty() ? "" : "  namespace: " + ns + "\n") + "data:\n  key: value\n";
}

const std::string kQuotaMessage =
    "namespace \"payments\" already has 1 of its 1 hybrid workloads (api); remove tls from one "
    "of them or raise maxWorkloads for the namespace";
const std::string kMountMessage =
    "hybrid Sidecar \"api\" reads \"/etc/istio/tls-certs/tls.crt\" but no "
    "sidecar.istio.io/userVolumeMount covers it; mount the certificate Secret into the proxy at "
    "that folder";
const std::string kGrantPatchValue =
    R"({"hybrid-guard.io/sidecar":"api","proxy.istio.io/config":"{\"proxyMetadata\":{\"SIDECAR_IN_HYBRID_MODE\":\"true\"}}"})";

// Sidecar api (line 1, admitted), Sidecar web (line 17, over the quota), Pod api-0 (line 33,
// selected by api, certificates not mounted: a warning and a patch).
std::string mixedInput() {
  return sidecar("api") + "---\n" + sidecar("web") + "---\n" +
         "apiVersion: v1\n"
         "kind: Pod\n"
         "metadata:\n"
         "  name: api-0\n"
         "  namespace: payments\n"
         "  labels: {app: api}\n"
         "spec:\n"
         "  containers:\n"
         "  - {name: app, image: example/app:1}\n";
}

std::vector<std::string> sourcesOf(const json& output) {
  std::vector<std::string> sources;
  for (const auto& r : output["results"]) sources.push_back(r["source"].get<std::string>());
  return sources;
}

std::vector<std::string> keysOf(const ordered_json& object) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.push_back(key);
  return keys;
}

json parseOutput(const test::CommandResult& run) {
  INFO("stdout: " << run.out << "\nstderr: " << run.err);
  json output;
  REQUIRE_NOTHROW(output = json::parse(run.out));
  return output;
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("exit codes (DESIGN §7)", "[cli]") {
  test::TempDir dir;
  dir.write("policy.yaml", kPolicy);

  SECTION("0: every object admitted") {
    dir.write("in.yaml", sidecar("api") + "---\n" + configMap("settings"));
    auto run = hybridGuardIn(dir.path(), {"eval", "--policy", "policy.yaml", "in.yaml"});
    CHECK(run.exitCode == 0);
    CHECK(run.err.empty());
  }
  SECTION("0: admitted with warnings only") {
    dir.write("in.yaml", R"(apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: api-7d9f
  namespace: payments
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: api, uid: u1, controller: true}]
spec:
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: istio-proxy
        env: [{name: SIDECAR_IN_HYBRID_MODE, value: "true"}]
)");
    auto run =
        hybridGuardIn(dir.path(), {"eval", "-o", "json", "--policy", "policy.yaml", "in.yaml"});
    CHECK(run.exitCode == 0);
    auto output = parseOutput(run);
    CHECK(output["summary"] ==
          json{{"objects", 1}, {"admitted", 1}, {"denied", 0}, {"warnings", 1}});
    CHECK(output["results"][0]["warnings"][0]["rule"] == "hybrid-flag-unapproved");
  }
  SECTION("1: one object denied among admitted ones") {
    dir.write("in.yaml", mixedInput());
    auto run = hybridGuardIn(dir.path(), {"eval", "--policy", "policy.yaml", "in.yaml"});
    CHECK(run.exitCode == 1);
    CHECK(run.err.empty());
  }
  SECTION("1: the built-in default policy allows hybrid mode nowhere") {
    dir.write("in.yaml", sidecar("api"));
    auto run = hybridGuardIn(dir.path(), {"eval", "-o", "json", "in.yaml"});
    CHECK(run.exitCode == 1);
    CHECK(parseOutput(run)["results"][0]["violations"][0]["rule"] == "namespace-not-allowed");
  }
  SECTION("2: bad usage, malformed input, invalid policy") {
    dir.write("in.yaml", sidecar("api"));
    dir.write("bad.yaml", "a: [\n");
    dir.write("bad-policy.yaml",
              "apiVersion: hybrid-guard.io/v1alpha1\nkind: HybridModePolicy\n"
              "spec:\n  enforcement: never\n");
    CHECK(hybridGuardIn(dir.path(), {"eval", "--bogus", "in.yaml"}).exitCode == 2);
    CHECK(hybridGuardIn(dir.path(), {"eval", "bad.yaml"}).exitCode == 2);
    auto run = hybridGuardIn(dir.path(), {"eval", "--policy", "bad-policy.yaml", "in.yaml"});
    CHECK(run.exitCode == 2);
    CHECK(run.out.empty());
    CHECK(run.err.find("bad-policy.yaml:4: spec.enforcement: ") != std::string::npos);
  }
}

TEST_CASE("json output (-o json): one document, keys in the documented order (DESIGN §7)",
          "[cli]") {
  test::TempDir dir;
  dir.write("policy.yaml", kPolicy);
  dir.write("input.yaml", mixedInput());
  auto run =
      hybridGuardIn(dir.path(), {"eval", "-o", "json", "--policy", "policy.yaml", "input.yaml"});
  REQUIRE(run.exitCode == 1);
  ordered_json output;
  REQUIRE_NOTHROW(output = ordered_json::parse(run.out));

  CHECK(keysOf(output) == std::vector<std::string>{"results", "summary"});
  REQUIRE(output["results"].size() == 3);
  const std::vector<std::string> resultKeys = {"source",   "apiVersion", "kind",    "namespace",
                                               "name",     "operation",  "allowed", "violations",
                                               "warnings", "patch"};
  for (const auto& result : output["results"]) CHECK(keysOf(result) == resultKeys);
  CHECK(keysOf(output["summary"]) ==
        std::vector<std::string>{"objects", "admitted", "denied", "warnings"});

  SECTION("an admitted Sidecar") {
    CHECK(
        output["results"][0].dump() ==
        R"({"source":"input.yaml:1","apiVersion":"networking.istio.io/v1","kind":"Sidecar","namespace":"payments","name":"api","operation":"CREATE","allowed":true,"violations":[],"warnings":[],"patch":[]})");
  }
  SECTION("results[].violations[{rule, path, message}]") {
    ordered_json want = {{"source", "input.yaml:17"},
                         {"apiVersion", "networking.istio.io/v1"},
                         {"kind", "Sidecar"},
                         {"namespace", "payments"},
                         {"name", "web"},
                         {"operation", "CREATE"},
                         {"allowed", false},
                         {"violations",
                          {{{"rule", "namespace-quota-exceeded"},
                            {"path", "metadata.namespace"},
                            {"message", kQuotaMessage}}}},
                         {"warnings", ordered_json::array()},
                         {"patch", ordered_json::array()}};
    CHECK(output["results"][1].dump() == want.dump());
  }
  SECTION("results[].warnings and the patch of a pod") {
    const auto& pod = output["results"][2];
    CHECK(pod["source"] == "input.yaml:33");
    CHECK(pod["kind"] == "Pod");
    CHECK(pod["allowed"] == true);
    CHECK(pod["violations"].empty());
    REQUIRE(pod["warnings"].size() == 1);
    CHECK(keysOf(pod["warnings"][0]) == std::vector<std::string>{"rule", "path", "message"});
    CHECK(pod["warnings"][0]["rule"] == "certificate-not-mounted");
    CHECK(pod["warnings"][0]["path"] ==
          R"(metadata.annotations["sidecar.istio.io/userVolumeMount"])");
    CHECK(pod["warnings"][0]["message"] == kMountMessage);
    CHECK(json::parse(pod["patch"].dump()) ==
          json::parse(R"([{"op":"add","path":"/metadata/annotations","value":)" + kGrantPatchValue +
                      "}]"));
  }
  SECTION("summary{objects, admitted, denied, warnings}") {
    CHECK(output["summary"].dump() == R"({"objects":3,"admitted":2,"denied":1,"warnings":1})");
  }
}

TEST_CASE("text output: DENY/WARN/ALLOW lines, indented findings, a summary (DESIGN §7)", "[cli]") {
  test::TempDir dir;
  dir.write("policy.yaml", kPolicy);

  SECTION("deny mode") {
    dir.write("input.yaml", mixedInput());
    auto run = hybridGuardIn(dir.path(), {"eval", "--policy", "policy.yaml", "input.yaml"});
    CHECK(run.exitCode == 1);
    CHECK(
        run.out ==
        "ALLOW Sidecar payments/api input.yaml:1\n"
        "DENY Sidecar payments/web input.yaml:17\n"
        "  [namespace-quota-exceeded] metadata.namespace: " +
            kQuotaMessage + "\n" +
            "WARN Pod payments/api-0 input.yaml:33\n"
            "  warning: [certificate-not-mounted] "
            "metadata.annotations[\"sidecar.istio.io/userVolumeMount\"]: " +
            kMountMessage + "\n" +
            "  patch: 1 operation [{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":" +
            kGrantPatchValue + "}]\n" + "3 objects: 2 admitted, 1 denied, 1 warnings\n");
  }
  SECTION("warn mode: admitted with violations is WARN") {
    dir.write("warn.yaml", std::string(kPolicy) + "  enforcement: warn\n");
    dir.write("input.yaml", sidecar("api", "shop"));
    auto run = hybridGuardIn(dir.path(), {"eval", "--policy", "warn.yaml", "input.yaml"});
    CHECK(run.exitCode == 0);
    CHECK(run.out ==
          "WARN Sidecar shop/api input.yaml:1\n"
          "  [namespace-not-allowed] metadata.namespace: hybrid mode is not allowed in namespace "
          "\"shop\"; ask the platform team to add it to the policy's spec.namespaces\n"
          "1 objects: 1 admitted, 0 denied, 0 warnings\n");
  }
}

TEST_CASE("sources: the file and the line where each object starts (DESIGN §7)", "[cli]") {
  test::TempDir dir;

  SECTION("multi-document YAML with comments and empty documents") {
    dir.write("in.yaml",
              "# two ConfigMaps\n"     // 1
              "---\n"                  // 2
              "apiVersion: v1\n"       // 3
              "kind: ConfigMap\n"      // 4
              "metadata: {name: a}\n"  // 5
              "---\n"                  // 6
              "---\n"                  // 7
              "# the second one\n"     // 8
              "apiVersion: v1\n"       // 9
              "kind: ConfigMap\n"      // 10
              "metadata:\n"            // 11
              "  name: b\n");          // 12
    auto output = parseOutput(hybridGuardIn(dir.path(), {"eval", "-o", "json", "in.yaml"}));
    CHECK(sourcesOf(output) == std::vector<std::string>{"in.yaml:3", "in.yaml:9"});
  }
  SECTION("the items of a List as kubectl get -o json prints it") {
    dir.write("list.json", R"({
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "a",
                "namespace": "payments"
            }
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "b", "namespace": "payments"}
        }
    ],
    "kind": "List",
    "metadata": {
        "resourceVersion": ""
    }
}
)");
    auto output = parseOutput(hybridGuardIn(dir.path(), {"eval", "-o", "json", "list.json"}));
    CHECK(sourcesOf(output) == std::vector<std::string>{"list.json:4", "list.json:12"});
    CHECK(output["results"][1]["name"] == "b");
    CHECK(output["summary"]["objects"] == 2);
  }
  SECTION("the items of a YAML List") {
    dir.write("list.yaml",
              "apiVersion: v1\n"           // 1
              "kind: List\n"               // 2
              "items:\n"                   // 3
              "- apiVersion: v1\n"         // 4
              "  kind: ConfigMap\n"        // 5
              "  metadata: {name: a}\n"    // 6
              "-\n"                        // 7
              "  apiVersion: v1\n"         // 8
              "  kind: ConfigMap\n"        // 9
              "  metadata: {name: b}\n");  // 10
    auto output = parseOutput(hybridGuardIn(dir.path(), {"eval", "-o", "json", "list.yaml"}));
    CHECK(sourcesOf(output) == std::vector<std::string>{"list.yaml:4", "list.yaml:8"});
  }
  SECTION("a JSON object after blank lines") {
    dir.write("obj.json",
              "\n\n  {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n"
              "   \"metadata\": {\"name\": \"a\"}}\n");
    auto output = parseOutput(hybridGuardIn(dir.path(), {"eval", "-o", "json", "obj.json"}));
    CHECK(sourcesOf(output) == std::vector<std::string>{"obj.json:3"});
  }
}

TEST_CASE("directories: recursive, sorted, only .yaml/.yml/.json (DESIGN §7)", "[cli]") {
  test::TempDir dir;
  dir.write("manifests/b.yaml", configMap("b"));
  dir.write("manifests/a.yml", configMap("a"));
  dir.write("manifests/sub/c.json",
            R"({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})");
  dir.write("manifests/sub/deeper/d.yaml", configMap("d"));
  dir.write("manifests/z.yaml", configMap("z"));
  // Not manifests by name: never read from a directory, even when they would not parse.
  dir.write("manifests/notes.md", "# notes\n: : [\n");
  dir.write("manifests/sub/skip.txt", "{{ not yaml\n");
  dir.write("manifests/app.yaml.injected", configMap("injected"));
  dir.write("manifests/yaml", "{{ not yaml\n");

  SECTION("a directory") {
    auto run = hybridGuardIn(dir.path(), {"eval", "-o", "json", "manifests"});
    CHECK(run.exitCode == 0);
    CHECK(sourcesOf(parseOutput(run)) ==
          std::vector<std::string>{"manifests/a.yml:1", "manifests/b.yaml:1",
                                   "manifests/sub/c.json:1", "manifests/sub/deeper/d.yaml:1",
                                   "manifests/z.yaml:1"});
  }
  SECTION("files named explicitly are read whatever their name, in the order given") {
    dir.write("manifests/sub/plain.txt", configMap("txt"));
    auto run = hybridGuardIn(dir.path(), {"eval", "-o", "json", "manifests/app.yaml.injected",
                                          "manifests/sub/plain.txt", "manifests/a.yml"});
    CHECK(run.exitCode == 0);
    auto output = parseOutput(run);
    CHECK(sourcesOf(output) == std::vector<std::string>{"manifests/app.yaml.injected:1",
                                                        "manifests/sub/plain.txt:1",
                                                        "manifests/a.yml:1"});
    CHECK(output["results"][0]["name"] == "injected");
  }
  SECTION("a corpus *.injected file named explicitly") {
    auto injected = test::sharedDir() / "corpus" / "istio-inject" / "frontend.yaml.injected";
    auto run = hybridGuard({"eval", "-o", "json", injected.string()});
    CHECK(run.exitCode == 0);
    auto output = parseOutput(run);
    CHECK(sourcesOf(output) ==
          std::vector<std::string>{injected.string() + ":1", injected.string() + ":15"});
    CHECK(output["results"][1]["kind"] == "Deployment");
  }
  SECTION("an explicitly named file that does not parse is an input error") {
    auto run = hybridGuardIn(dir.path(), {"eval", "manifests/sub/skip.txt"});
    CHECK(run.exitCode == 2);
    CHECK(run.err.find("manifests/sub/skip.txt:") != std::string::npos);
  }
}

TEST_CASE("stdin: - reads the objects from standard input (DESIGN §7)", "[cli]") {
  test::TempDir dir;
  dir.write("policy.yaml", kPolicy);
  dir.write("first.yaml", sidecar("api"));

  SECTION("alone") {
    auto run = hybridGuardIn(dir.path(), {"eval", "-o", "json", "-"},
                             configMap("a", "payments") + "---\n" + configMap("b"));
    CHECK(run.exitCode == 0);
    auto output = parseOutput(run);
    CHECK(sourcesOf(output) == std::vector<std::string>{"<stdin>:1", "<stdin>:9"});
    CHECK(output["results"][1]["namespace"] == "default");
  }
  SECTION("between files, in argument order: the Sidecar from the file fills the quota first") {
    auto run = hybridGuardIn(dir.path(),
                             {"eval", "-o", "json", "--policy", "policy.yaml", "first.yaml", "-"},
                             sidecar("web"));
    CHECK(run.exitCode == 1);
    auto output = parseOutput(run);
    CHECK(sourcesOf(output) == std::vector<std::string>{"first.yaml:1", "<stdin>:1"});
    CHECK(output["results"][1]["violations"][0]["message"] == kQuotaMessage);
  }
}

TEST_CASE("AdmissionReview input: operation, user, namespace and oldObject from the review",
          "[cli]") {
  test::TempDir dir;
  dir.write("policy.yaml", std::string(kPolicy) + "  requesters:\n    users: [alice]\n");
  auto sidecarJson = [](const std::string& variant) {
    // The Sidecar of sidecar(), without its namespace, as JSON.
    json s = {{"apiVersion", "networking.istio.io/v1"},
              {"kind", "Sidecar"},
              {"metadata", {{"name", "api"}}},
              {"spec",
               {{"workloadSelector", {{"labels", {{"app", "api"}}}}},
                {"ingress",
                 {{{"port", {{"number", 8443}, {"protocol", "HTTPS"}, {"name", "external"}}},
                   {"tls",
                    {{"mode", "SIMPLE"},
                     {"serverCertificate", "/etc/istio/tls-certs/tls.crt"},
                     {"privateKey", "/etc/istio/tls-certs/tls.key"}}}}}}}}};
    if (variant == "labelled") s["metadata"]["labels"] = {{"release", "2"}};
    if (variant == "moved") s["spec"]["ingress"][0]["port"]["number"] = 9443;
    return s;
  };
  auto review = [](const std::string& uid, const std::string& op, const std::string& user,
                   const json& object, const json& oldObject) {
    json request = {
        {"uid", uid},
        {"kind", {{"group", "networking.istio.io"}, {"version", "v1"}, {"kind", "Sidecar"}}},
        {"namespace", "payments"},
        {"name", "api"},
        {"operation", op},
        {"userInfo", {{"username", user}, {"groups", {"system:authenticated"}}}},
        {"object", object}};
    if (!oldObject.is_null()) request["oldObject"] = oldObject;
    return json{
        {"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", request}}
        .dump(2);
  };
  // The reviews are JSON files read in sorted order; the plain Sidecar comes last.
  dir.write("in/1-create.json", review("u1", "CREATE", "alice", sidecarJson(""), nullptr));
  dir.write("in/2-relabel.json",
            review("u2", "UPDATE", "mallory", sidecarJson("labelled"), sidecarJson("")));
  dir.write("in/3-move.json",
            review("u3", "UPDATE", "mallory", sidecarJson("moved"), sidecarJson("labelled")));
  dir.write("in/4-plain.yaml", sidecar("web"));
  auto run = hybridGuardIn(dir.path(), {"eval", "-o", "json", "--policy", "policy.yaml", "--user",
                                        "bob", "--namespace", "elsewhere", "in"});
  CHECK(run.exitCode == 1);
  auto results = parseOutput(run)["results"];
  REQUIRE(results.size() == 4);

  SECTION("CREATE by an allowed user, in the review's namespace") {
    CHECK(results[0]["source"] == "in/1-create.json:1");
    CHECK(results[0]["operation"] == "CREATE");
    CHECK(results[0]["namespace"] == "payments");
    CHECK(results[0]["allowed"] == true);
    CHECK(results[0]["violations"].empty());
  }
  SECTION("UPDATE of labels only by anyone: admitted unevaluated (DESIGN §4)") {
    CHECK(results[1]["operation"] == "UPDATE");
    CHECK(results[1]["allowed"] == true);
    CHECK(results[1]["violations"].empty());
  }
  SECTION("UPDATE of the ingress: evaluated with the review's user") {
    CHECK(results[2]["operation"] == "UPDATE");
    CHECK(results[2]["allowed"] == false);
    CHECK(
        results[2]["violations"] ==
        json::parse(
            R"([{"rule":"requester-not-allowed","path":"metadata.name","message":"\"mallory\" may not create or change hybrid Sidecars; ask a requester the policy's spec.requesters lists"}])"));
  }
  SECTION("plain objects: CREATE by --user, the review's Sidecar counted") {
    CHECK(results[3]["operation"] == "CREATE");
    CHECK(results[3]["namespace"] == "payments");
    std::vector<std::string> rules;
    for (const auto& v : results[3]["violations"]) rules.push_back(v["rule"]);
    CHECK(rules == std::vector<std::string>{"requester-not-allowed", "namespace-quota-exceeded"});
    CHECK(results[3]["violations"][1]["message"] == kQuotaMessage);
  }
}

TEST_CASE("state (--state): stored objects count and make a later identical object an UPDATE",
          "[cli]") {
  test::TempDir dir;
  dir.write("policy.yaml", kPolicy);
  dir.write("state/api.yaml", sidecar("api"));
  dir.write("state/other.yaml", configMap("settings", "payments"));

  SECTION("a stored hybrid Sidecar fills the namespace's quota") {
    dir.write("in.yaml", sidecar("web"));
    auto run = hybridGuardIn(dir.path(), {"eval", "-o", "json", "--policy", "policy.yaml",
                                          "--state", "state", "in.yaml"});
    CHECK(run.exitCode == 1);
    auto output = parseOutput(run);
    CHECK(output["summary"]["objects"] == 1);  // state objects are not results
    CHECK(output["results"][0]["violations"] == json::array({{{"rule", "namespace-quota-exceeded"},
                                                              {"path", "metadata.namespace"},
                                                              {"message", kQuotaMessage}}}));
  }
  SECTION("an identical object is an UPDATE, admitted unevaluated even by the default policy") {
    dir.write("in.yaml", sidecar("api") + "---\n" + configMap("settings", "payments"));
    auto run = hybridGuardIn(dir.path(), {"eval", "-o", "json", "--state", "state/api.yaml",
                                          "--state", "state/other.yaml", "in.yaml"});
    CHECK(run.exitCode == 0);
    auto output = parseOutput(run);
    CHECK(output["results"][0]["operation"] == "UPDATE");
    CHECK(output["results"][0]["violations"].empty());
    CHECK(output["results"][1]["operation"] == "UPDATE");
  }
  SECTION("a malformed state file is an input error") {
    dir.write("broken-state.yaml", "kind: [\n");
    dir.write("in.yaml", configMap("a"));
    auto run = hybridGuardIn(dir.path(), {"eval", "--state", "broken-state.yaml", "in.yaml"});
    CHECK(run.exitCode == 2);
    CHECK(run.err.find("broken-state.yaml:") != std::string::npos);
  }
}

TEST_CASE("namespace (--namespace): the namespace of objects without one, default \"default\"",
          "[cli]") {
  test::TempDir dir;
  dir.write("in.yaml", configMap("a") + "---\n" + configMap("b", "payments"));
  SECTION("default") {
    auto output = parseOutput(hybridGuardIn(dir.path(), {"eval", "-o", "json", "in.yaml"}));
    CHECK(output["results"][0]["namespace"] == "default");
    CHECK(output["results"][1]["namespace"] == "payments");
  }
  SECTION("--namespace test") {
    auto output = parseOutput(
        hybridGuardIn(dir.path(), {"eval", "-o", "json", "--namespace", "test", "in.yaml"}));
    CHECK(output["results"][0]["namespace"] == "test");
    CHECK(output["results"][1]["namespace"] == "payments");
  }
}

TEST_CASE("lint: 0 for valid policies, 2 listing every error with file:line (DESIGN §7)", "[cli]") {
  test::TempDir dir;
  dir.write("good.yaml", kPolicy);
  dir.write("bad.yaml", R"(apiVersion: hybrid-guard.io/v1alpha1
kind: HybridModePolicy
metadata:
  name: broken
spec:
  enforcment: deny
  namespaces:
  - name: payments
    maxWorkloads: -1
  - name: shop
  - name: shop
  - pattern: "edge-("
  maxWorkloads: 10001
  requesters: {}
  tls:
    modes: [SIMPLE, ISTIO_MUTUAL, FANCY]
    minProtocolVersion: TLSV9
    certificatePaths: []
  ports:
  - 15006
  - 70000
  - {from: 9000, to: 8000}
)");

  SECTION("valid") {
    auto run = hybridGuardIn(dir.path(), {"lint", "good.yaml"});
    CHECK(run.exitCode == 0);
    CHECK(run.out == "good.yaml: valid (policy \"cli\", enforcement deny)\n");
    CHECK(run.err.empty());
  }
  SECTION("the shipped example policy is valid") {
    auto run = hybridGuard({"lint", (test::sourceDir() / "examples" / "policy.yaml").string()});
    CHECK(run.exitCode == 0);
  }
  SECTION("invalid: every error, each with its line and field path") {
    auto run = hybridGuardIn(dir.path(), {"lint", "bad.yaml"});
    CHECK(run.exitCode == 2);
    const std::vector<std::string> errors = {
        "bad.yaml:6: spec.enforcment: unknown field",
        "bad.yaml:9: spec.namespaces[0].maxWorkloads: must not be negative",
        "bad.yaml:11: spec.namespaces[2]: namespace \"shop\" is listed twice",
        "bad.yaml:12: spec.namespaces[3].pattern: invalid RE2 pattern \"edge-(\"",
        "bad.yaml:13: spec.maxWorkloads: must be at most 10000",
        "bad.yaml:14: spec.requesters: needs at least one user or group",
        "bad.yaml:16: spec.tls.modes[1]: ISTIO_MUTUAL is never accepted on sidecar ingress",
        "bad.yaml:16: spec.tls.modes[2]: unknown TLS mode \"FANCY\"",
        "bad.yaml:17: spec.tls.minProtocolVersion: unknown TLS version \"TLSV9\"",
        "bad.yaml:18: spec.tls.certificatePaths: must not be empty",
        "bad.yaml:20: spec.ports[0]: port 15006 is reserved by Istio",
        "bad.yaml:21: spec.ports[1]: port 70000 is outside 1..65535",
        "bad.yaml:22: spec.ports[2]: \"from\" 9000 is above \"to\" 8000",
    };
    for (const auto& error : errors) {
      INFO(run.err);
      CHECK(("\n" + run.err).find("\n" + error) != std::string::npos);
    }
    CHECK(run.err.find("bad.yaml: invalid (13 errors)") != std::string::npos);
  }
  SECTION("several files: any invalid one makes it 2") {
    auto run = hybridGuardIn(dir.path(), {"lint", "good.yaml", "bad.yaml"});
    CHECK(run.exitCode == 2);
    CHECK(run.out == "good.yaml: valid (policy \"cli\", enforcement deny)\n");
  }
  SECTION("a missing file, no file") {
    auto missing = hybridGuardIn(dir.path(), {"lint", "missing.yaml"});
    CHECK(missing.exitCode == 2);
    CHECK(missing.err.find("missing.yaml") != std::string::npos);
    CHECK(hybridGuardIn(dir.path(), {"lint"}).exitCode == 2);
  }
}

TEST_CASE("version", "[cli]") {
  auto run = hybridGuard({"version"});
  CHECK(run.exitCode == 0);
  CHECK(run.out == std::string("hybrid-guard ") + HG_VERSION + "\n");
}

TEST_CASE("bad usage exits 2 and says what is wrong (DESIGN §7)", "[cli]") {
  test::TempDir dir;
  dir.write("in.yaml", configMap("a"));
  struct Usage {
    std::vector<std::string> args;
    std::string mentions;
  };
  const std::vector<Usage> usages = {
      {{"eval", "--bogus", "in.yaml"}, "--bogus"},
      {{"eval"}, "eval"},
      {{"eval", "-o", "yaml", "in.yaml"}, "yaml"},
      {{"eval", "in.yaml", "--policy"}, "--policy"},
      {{"frobnicate"}, "frobnicate"},
      {{}, "usage"},
  };
  for (const auto& usage : usages) {
    std::string label;
    for (const auto& a : usage.args) label += a + " ";
    DYNAMIC_SECTION("hybrid-guard " << label) {
      auto run = hybridGuardIn(dir.path(), usage.args);
      CHECK(run.exitCode == 2);
      CHECK(run.out.empty());
      CHECK(run.err.find(usage.mentions) != std::string::npos);
    }
  }
}

TEST_CASE("bad input exits 2 naming the file and line, never crashes or hangs", "[cli]") {
  test::TempDir dir;
  auto expectInputError = [&](const std::string& file, const std::string& where) {
    auto start = std::chrono::steady_clock::now();
    auto run = hybridGuardIn(dir.path(), {"eval", "-o", "json", file});
    INFO("stdout: " << run.out.substr(0, 300) << "\nstderr: " << run.err.substr(0, 300));
    CHECK(secondsSince(start) < 30);
    CHECK(run.exitCode == 2);
    CHECK(run.out.empty());
    CHECK(run.err.rfind(where, 0) == 0);
    return run;
  };

  SECTION("malformed YAML") {
    dir.write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n name: x\n  bad: indent\n");
    expectInputError("bad.yaml", "bad.yaml:5: ");
  }
  SECTION("malformed JSON") {
    dir.write("bad.json", "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",\n}\n");
    expectInputError("bad.json", "bad.json:4: ");
  }
  SECTION("a 50 MB file") {
    dir.write("big.yaml",
              "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: " +
                  std::string(50 * 1000 * 1000, 'a') + "\n");
    expectInputError("big.yaml", "big.yaml");
  }
  SECTION("10,000 levels of nesting in YAML") {
    dir.write("deep.yaml", "apiVersion: v1\nkind: ConfigMap\ndata: " + std::string(10000, '[') +
                               std::string(10000, ']') + "\n");
    expectInputError("deep.yaml", "deep.yaml:3: ");
  }
  SECTION("10,000 levels of nesting in JSON") {
    std::string deep;
    for (int i = 0; i < 10000; ++i) deep += "{\"a\":";
    deep += "1" + std::string(10000, '}');
    dir.write("deep.json",
              "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n\"data\": " + deep + "}\n");
    expectInputError("deep.json", "deep.json:2: ");
  }
  SECTION("a YAML alias bomb (billion laughs)") {
    dir.write("bomb.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata: {name: lol}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
)");
    auto run = expectInputError("bomb.yaml", "bomb.yaml:");
    REQUIRE(run.err.size() > 10);
    CHECK(std::isdigit(static_cast<unsigned char>(run.err[10])));
  }
  SECTION("duplicate keys") {
    dir.write("dup.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n");
    auto yamlRun = expectInputError("dup.yaml", "dup.yaml:5: ");
    CHECK(yamlRun.err.find("\"name\"") != std::string::npos);
    dir.write("dup.json",
              "{\n \"apiVersion\": \"v1\",\n \"kind\": \"ConfigMap\",\n \"kind\": \"Secret\"\n}\n");
    auto jsonRun = expectInputError("dup.json", "dup.json:4: ");
    CHECK(jsonRun.err.find("\"kind\"") != std::string::npos);
  }
  SECTION("binary garbage: every byte value") {
    std::string bytes;
    for (int round = 0; round < 4; ++round) {
      for (int b = 0; b < 256; ++b) bytes += static_cast<char>(b);
    }
    dir.write("garbage.bin", bytes);
    expectInputError("garbage.bin", "garbage.bin:");
  }
  SECTION("binary garbage: random bytes") {
    std::mt19937 gen(42);
    std::string bytes;
    for (int i = 0; i < 65536; ++i) bytes += static_cast<char>(gen() & 0xFF);
    dir.write("random.bin", bytes);
    expectInputError("random.bin", "random.bin:");
  }
  SECTION("a missing file") {
    expectInputError("missing.yaml", "missing.yaml");
  }
  SECTION("one malformed file among good ones: no results at all") {
    dir.write("good.yaml", configMap("a"));
    dir.write("bad.yaml", "kind: [\n");
    auto run = hybridGuardIn(dir.path(), {"eval", "good.yaml", "bad.yaml"});
    CHECK(run.exitCode == 2);
    CHECK(run.out.empty());
    CHECK(run.err.rfind("bad.yaml:", 0) == 0);
  }
}

TEST_CASE("empty input: zero objects, exit 0", "[cli]") {
  test::TempDir dir;
  dir.write("empty.yaml", "");
  dir.write("comments.yaml", "# nothing here\n---\n---\n");
  for (const char* file : {"empty.yaml", "comments.yaml"}) {
    DYNAMIC_SECTION(file) {
      auto run = hybridGuardIn(dir.path(), {"eval", "-o", "json", file});
      CHECK(run.exitCode == 0);
      CHECK(parseOutput(run) ==
            json::parse(
                R"({"results":[],"summary":{"objects":0,"admitted":0,"denied":0,"warnings":0}})"));
    }
  }
  auto text = hybridGuardIn(dir.path(), {"eval", "empty.yaml"});
  CHECK(text.exitCode == 0);
  CHECK(text.out == "0 objects: 0 admitted, 0 denied, 0 warnings\n");
}

TEST_CASE("invalid-object: a well-formed object of the wrong shape is denied, exit 1", "[cli]") {
  test::TempDir dir;
  dir.write("policy.yaml", kPolicy);
  dir.write("in.yaml",
            "apiVersion: networking.istio.io/v1\n"
            "kind: Sidecar\n"
            "metadata: {name: api, namespace: payments}\n"
            "spec:\n"
            "  ingress:\n"
            "    external: {port: {number: 8443, protocol: HTTPS}, tls: {mode: SIMPLE}}\n"
            "---\n"
            "just a string\n");
  auto run =
      hybridGuardIn(dir.path(), {"eval", "-o", "json", "--policy", "policy.yaml", "in.yaml"});
  CHECK(run.exitCode == 1);
  auto results = parseOutput(run)["results"];
  REQUIRE(results.size() == 2);
  CHECK(
      results[0]["violations"] ==
      json::parse(
          R"([{"rule":"invalid-object","path":"spec.ingress","message":"must be a list, not a map"}])"));
  CHECK(results[1]["source"] == "in.yaml:8");
  CHECK(results[1]["allowed"] == false);
  CHECK(results[1]["violations"][0]["rule"] == "invalid-object");
}
