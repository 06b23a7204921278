// DESIGN §5 mutation: every patch is applied back to its input (RFC 6902 round trip).
#include <catch2/catch.hpp>

#include "policy/workload_view.h"
#include "test/support/engine_helpers.h"

using namespace hybrid_guard;
using hybrid_guard::test::policyFrom;
using hybrid_guard::test::ruleIds;
using hybrid_guard::test::yaml;
using nlohmann::json;
using Ids = std::vector<std::string>;

namespace {

const char* kPolicy = "  namespaces: [payments]\n";

json pod() {
  return yaml(R"(
apiVersion: v1
kind: Pod
metadata:
  name: api-1
  namespace: payments
  labels: {app: api}
spec:
  containers:
  - name: app
    image: app
)");
}

policy::State stateWithSidecar() {
  policy::State state;
  state.upsert({"payments", "api-tls", policy::Labels{{"app", "api"}}, {}});
  return state;
}

policy::Decision mutate(const json& object, const policy::State& state,
                        const char* policyYaml = kPolicy) {
  test::TestRequest r(object);
  return policy::decide(r.request, *policyFrom(policyYaml), state, policy::Phase::Mutate);
}

json proxyConfigOf(const json& object) {
  return json::parse(object["metadata"]["annotations"]["proxy.istio.io/config"].get<std::string>());
}

}  // namespace

TEST_CASE("a selected pod gets the annotation and the grant", "[mutation]") {
  json p = pod();
  auto d = mutate(p, stateWithSidecar());
  CHECK(d.allowed);
  json expected = p;
  expected["metadata"]["annotations"] = {
      {"proxy.istio.io/config", R"({"proxyMetadata":{"SIDECAR_IN_HYBRID_MODE":"true"}})"},
      {"hybrid-guard.io/sidecar", "api-tls"}};
  CHECK(p.patch(d.patch) == expected);
  SECTION("the patch creates the missing annotations map in one operation") {
    REQUIRE(d.patch.size() == 1);
    CHECK(d.patch[0]["op"] == "add");
    CHECK(d.patch[0]["path"] == "/metadata/annotations");
  }
}

TEST_CASE("keys are escaped as JSON Pointer requires", "[mutation]") {
  json p = pod();
  p["metadata"]["annotations"] = {{"team", "a"}};
  auto d = mutate(p, stateWithSidecar());
  std::vector<std::string> paths;
  for (const auto& op : d.patch) paths.push_back(op["path"]);
  std::sort(paths.begin(), paths.end());
  CHECK(paths == std::vector<std::string>{"/metadata/annotations/hybrid-guard.io~1sidecar",
                                          "/metadata/annotations/proxy.istio.io~1config"});
  CHECK(policy::escapeJsonPointerToken("a~b/c") == "a~0b~1c");
}

TEST_CASE("merge into an existing ProxyConfig keeps every other setting", "[mutation]") {
  json p = pod();
  SECTION("YAML form") {
    p["metadata"]["annotations"] = {
        {"proxy.istio.io/config",
         "discoveryAddress: foo:123\nconcurrency: 0\nproxyMetadata:\n  FOO: bar\n  "
         "SIDECAR_IN_HYBRID_MODE: \"false\"\n"}};
    auto d = mutate(p, stateWithSidecar());
    json out = p.patch(d.patch);
    CHECK(proxyConfigOf(out) ==
          json{{"discoveryAddress", "foo:123"},
               {"concurrency", 0},
               {"proxyMetadata", {{"FOO", "bar"}, {"SIDECAR_IN_HYBRID_MODE", "true"}}}});
  }
  SECTION("JSON form") {
    p["metadata"]["annotations"] = {
        {"proxy.istio.io/config", R"({ "holdApplicationUntilProxyStarts": true })"}};
    auto d = mutate(p, stateWithSidecar());
    CHECK(proxyConfigOf(p.patch(d.patch)) ==
          json{{"holdApplicationUntilProxyStarts", true},
               {"proxyMetadata", {{"SIDECAR_IN_HYBRID_MODE", "true"}}}});
  }
}

TEST_CASE("the env var is set on an injected istio-proxy container", "[mutation]") {
  json p = pod();
  json proxy = {{"name", "istio-proxy"}, {"image", "proxyv2"}};
  SECTION("in containers, creating env") {
    p["spec"]["containers"].push_back(proxy);
    json out = p.patch(mutate(p, stateWithSidecar()).patch);
    CHECK(out["spec"]["containers"][1]["env"] ==
          json::array({{{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", "true"}}}));
  }
  SECTION("in initContainers (native sidecar), appending to env") {
    proxy["env"] = {{{"name", "A"}, {"value", "b"}}};
    p["spec"]["initContainers"] = json::array({proxy});  // not {proxy}: clang copies that
    json out = p.patch(mutate(p, stateWithSidecar()).patch);
    CHECK(out["spec"]["initContainers"][0]["env"] ==
          json::array({{{"name", "A"}, {"value", "b"}},
                       {{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", "true"}}}));
  }
  SECTION("an existing false value is overwritten") {
    proxy["env"] = {{{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", "false"}}};
    p["spec"]["containers"].push_back(proxy);
    json out = p.patch(mutate(p, stateWithSidecar()).patch);
    CHECK(out["spec"]["containers"][1]["env"] ==
          json::array({{{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", "true"}}}));
  }
}

TEST_CASE("mutation is idempotent", "[mutation]") {
  json p = pod();
  p["spec"]["containers"].push_back({{"name", "istio-proxy"}});
  auto state = stateWithSidecar();
  json once = p.patch(mutate(p, state).patch);
  CHECK(mutate(once, state).patch.empty());
  SECTION("a flag that already reads as set is never rewritten") {
    json q = pod();
    q["metadata"]["annotations"] = {
        {"proxy.istio.io/config", "proxyMetadata:\n  SIDECAR_IN_HYBRID_MODE: \"True\"\n"},
        {"hybrid-guard.io/sidecar", "api-tls"}};
    q["spec"]["containers"].push_back({{"name", "istio-proxy"},
                                       {"env",
                                        {{{"name", "SIDECAR_IN_HYBRID_MODE"},
                                          {"valueFrom", {{"fieldRef", {{"fieldPath", "x"}}}}}}}}});
    CHECK(mutate(q, state).patch.empty());
  }
}

TEST_CASE("no mutation", "[mutation]") {
  json p = pod();
  auto state = stateWithSidecar();
  SECTION("when no admitted hybrid Sidecar selects the pod") {
    CHECK(mutate(p, policy::State()).patch.empty());
  }
  SECTION("on the host network") {
    p["spec"]["hostNetwork"] = true;
    CHECK(mutate(p, state).patch.empty());
  }
  SECTION("opted out by label or annotation, as Istio reads it") {
    for (const char* value : {"false", "no", "0", "disabled"}) {
      json q = p;
      q["metadata"]["labels"]["sidecar.istio.io/inject"] = value;
      CHECK(mutate(q, state).patch.empty());
      json r = p;
      r["metadata"]["annotations"] = {{"sidecar.istio.io/inject", value}};
      CHECK(mutate(r, state).patch.empty());
    }
    for (const char* value : {"true", "Y", "yes", "ON"}) {
      json q = p;
      q["metadata"]["labels"]["sidecar.istio.io/inject"] = value;
      CHECK_FALSE(mutate(q, state).patch.empty());
    }
  }
  SECTION("with injection disabled, in dryrun, or in an exempt or disallowed namespace") {
    CHECK(mutate(p, state, "  namespaces: [payments]\n  injection: {enabled: false}\n")
              .patch.empty());
    CHECK(mutate(p, state, "  namespaces: [payments]\n  enforcement: dryrun\n").patch.empty());
    CHECK(mutate(p, state, "  namespaces: [payments]\n  exemptNamespaces: [payments]\n")
              .patch.empty());
    CHECK(mutate(p, state, "  namespaces: [shop]\n").patch.empty());
  }
  SECTION("on UPDATE") {
    test::TestRequest r(p, policy::Operation::Update, p);
    CHECK(policy::decide(r.request, *policyFrom(kPolicy), state, policy::Phase::Mutate)
              .patch.empty());
  }
}

TEST_CASE("proxy-config-unparseable", "[mutation][proxy-config-unparseable]") {
  json p = pod();
  p["metadata"]["annotations"] = {{"proxy.istio.io/config", "{not: [valid"}};
  auto d = mutate(p, stateWithSidecar());
  REQUIRE(ruleIds(d.warnings) == Ids{"proxy-config-unparseable"});
  CHECK(d.warnings[0].path == "metadata.annotations[\"proxy.istio.io/config\"]");
  json out = p.patch(d.patch);
  // Left alone; the grant is still recorded.
  CHECK(out["metadata"]["annotations"]["proxy.istio.io/config"] == "{not: [valid");
  CHECK(out["metadata"]["annotations"]["hybrid-guard.io/sidecar"] == "api-tls");
}

TEST_CASE("a dry-run request gets the same patch", "[mutation][dry-run]") {
  json p = pod();
  test::TestRequest r(p);
  r.request.dryRun = true;
  auto state = stateWithSidecar();
  auto dry = policy::decide(r.request, *policyFrom(kPolicy), state, policy::Phase::Mutate);
  CHECK(dry.patch == mutate(p, state).patch);
  CHECK_FALSE(dry.patch.empty());
}
