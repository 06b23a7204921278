// DESIGN §2 hybrid flag and §4 workload rules: hybrid-flag-unapproved, certificate-not-mounted,
// controller-owned objects, exempt namespaces, pod templates.
#include <catch2/catch.hpp>

#include "policy/workload_view.h"
#include "test/support/engine_helpers.h"

using namespace hybrid_guard;
using hybrid_guard::test::decideOn;
using hybrid_guard::test::policyFrom;
using hybrid_guard::test::ruleIds;
using hybrid_guard::test::yaml;
using nlohmann::json;
using Ids = std::vector<std::string>;

namespace {

const char* kPolicy = R"(
  exemptNamespaces: [platform]
  namespaces: [payments]
)";

json pod(const std::string& ns = "payments") {
  json p = yaml(R"(
apiVersion: v1
kind: Pod
metadata:
  name: api-1
  labels: {app: api}
spec:
  containers:
  - name: app
    image: app
  - name: istio-proxy
    image: proxyv2
    env:
    - {name: ISTIO_META_X, value: "1"}
)");
  p["metadata"]["namespace"] = ns;
  return p;
}

json hybridSidecar() {
  return yaml(R"(
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api, namespace: payments}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - port: {number: 8443, protocol: HTTPS}
    tls: {mode: SIMPLE, serverCertificate: /etc/istio/tls-certs/tls.crt, privateKey: /etc/istio/tls-certs/tls.key}
)");
}

void setEnvFlag(json& p, const std::string& value) {
  p["spec"]["containers"][1]["env"].push_back(
      {{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", value}});
}

policy::Decision validate(const json& object, const policy::State& state,
                          policy::Operation op = policy::Operation::Create,
                          const json& old = nullptr) {
  test::TestRequest r(object, op, old);
  return policy::decide(r.request, *policyFrom(kPolicy), state, policy::Phase::Validate);
}

}  // namespace

TEST_CASE("the hybrid flag reads as Go's ParseBool", "[flag]") {
  for (const char* yes : {"1", "t", "T", "true", "TRUE", "True"})
    CHECK(policy::parseGoBoolTrue(yes));
  for (const char* no : {"0", "false", "yes", "on", "", "tRUE", " true"}) {
    CHECK_FALSE(policy::parseGoBoolTrue(no));
  }
}

TEST_CASE("hybrid-flag-unapproved: bare pods", "[rules][hybrid-flag-unapproved]") {
  policy::State state;
  json p = pod();
  SECTION("env on istio-proxy") {
    setEnvFlag(p, "true");
    auto d = validate(p, state);
    CHECK_FALSE(d.allowed);
    REQUIRE(ruleIds(d.violations) == Ids{"hybrid-flag-unapproved"});
    CHECK(d.violations[0].path == "spec.containers[1].env[1]");
    CHECK(d.violations[0].message ==
          "SIDECAR_IN_HYBRID_MODE is set but no admitted hybrid Sidecar in namespace "
          "\"payments\" selects the pod; create a hybrid Sidecar whose workloadSelector matches "
          "its labels, or remove the flag");
  }
  SECTION("env with valueFrom counts as set") {
    p["spec"]["containers"][1]["env"].push_back(
        {{"name", "SIDECAR_IN_HYBRID_MODE"},
         {"valueFrom", {{"configMapKeyRef", {{"name", "x"}, {"key", "y"}}}}}});
    CHECK(ruleIds(validate(p, state).violations) == Ids{"hybrid-flag-unapproved"});
  }
  SECTION("native sidecar in initContainers") {
    p["spec"]["initContainers"] =
        json::array({{{"name", "istio-proxy"},
                      {"restartPolicy", "Always"},
                      {"env", {{{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", "1"}}}}}});
    auto d = validate(p, state);
    REQUIRE(ruleIds(d.violations) == Ids{"hybrid-flag-unapproved"});
    CHECK(d.violations[0].path == "spec.initContainers[0].env[0]");
  }
  SECTION("proxyMetadata in a YAML ProxyConfig, unquoted true") {
    p["metadata"]["annotations"] = {
        {"proxy.istio.io/config",
         "concurrency: 2\nproxyMetadata:\n  SIDECAR_IN_HYBRID_MODE: true\n"}};
    auto d = validate(p, state);
    REQUIRE(ruleIds(d.violations) == Ids{"hybrid-flag-unapproved"});
    CHECK(d.violations[0].path == "metadata.annotations[\"proxy.istio.io/config\"]");
  }
  SECTION("proxyMetadata in a JSON ProxyConfig") {
    p["metadata"]["annotations"] = {
        {"proxy.istio.io/config", R"({"proxyMetadata": {"SIDECAR_IN_HYBRID_MODE": "T"}})"}};
    CHECK(ruleIds(validate(p, state).violations) == Ids{"hybrid-flag-unapproved"});
  }
  SECTION("in a namespace that is not allowed") {
    json other = pod("shop");
    setEnvFlag(other, "true");
    auto d = validate(other, state);
    REQUIRE(ruleIds(d.violations) == Ids{"hybrid-flag-unapproved"});
    CHECK(d.violations[0].message.find("hybrid mode is not allowed in namespace \"shop\"") == 0);
  }
}

TEST_CASE("hybrid-flag-unapproved passes", "[rules][hybrid-flag-unapproved]") {
  policy::State state;
  test::admit(state, hybridSidecar());
  json p = pod();
  setEnvFlag(p, "true");
  SECTION("when an admitted hybrid Sidecar selects the pod") {
    auto d = validate(p, state);
    CHECK(d.allowed);
    CHECK(d.violations.empty());
  }
  SECTION("when the flag reads false") {
    json q = pod();
    setEnvFlag(q, "false");
    q["metadata"]["labels"]["app"] = "other";
    CHECK(validate(q, policy::State()).allowed);
  }
  SECTION("the flag on another container does not count") {
    json q = pod();
    q["spec"]["containers"][0]["env"] = {{{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", "true"}}};
    CHECK(validate(q, policy::State()).violations.empty());
  }
  SECTION("the last env entry of the name wins") {
    json q = pod();
    setEnvFlag(q, "true");
    setEnvFlag(q, "false");
    CHECK(validate(q, policy::State()).violations.empty());
  }
}

TEST_CASE("a selector of another label does not approve the pod",
          "[rules][hybrid-flag-unapproved]") {
  policy::State state;
  json s = hybridSidecar();
  s["spec"]["workloadSelector"]["labels"]["version"] = "v2";
  test::admit(state, s);
  json p = pod();
  setEnvFlag(p, "true");
  CHECK(ruleIds(validate(p, state).violations) == Ids{"hybrid-flag-unapproved"});
}

TEST_CASE("pod templates of every workload kind", "[rules][hybrid-flag-unapproved]") {
  json templ = pod();
  setEnvFlag(templ, "true");
  json podTemplate = {{"metadata", templ["metadata"]}, {"spec", templ["spec"]}};
  podTemplate["metadata"].erase("namespace");
  podTemplate["metadata"].erase("name");
  struct Kind {
    const char* apiVersion;
    const char* kind;
    std::string prefix;
  };
  for (const auto& k :
       {Kind{"apps/v1", "Deployment", "spec.template."},
        Kind{"apps/v1", "StatefulSet", "spec.template."},
        Kind{"apps/v1", "DaemonSet", "spec.template."},
        Kind{"apps/v1", "ReplicaSet", "spec.template."}, Kind{"batch/v1", "Job", "spec.template."},
        Kind{"batch/v1", "CronJob", "spec.jobTemplate.spec.template."}}) {
    json w = {{"apiVersion", k.apiVersion},
              {"kind", k.kind},
              {"metadata", {{"name", "w"}, {"namespace", "payments"}}}};
    if (std::string(k.kind) == "CronJob") {
      w["spec"] = {{"schedule", "* * * * *"},
                   {"jobTemplate", {{"spec", {{"template", podTemplate}}}}}};
    } else {
      w["spec"] = {{"template", podTemplate}};
    }
    INFO(k.kind);
    auto d = validate(w, policy::State());
    CHECK_FALSE(d.allowed);
    REQUIRE(ruleIds(d.violations) == Ids{"hybrid-flag-unapproved"});
    CHECK(d.violations[0].path == k.prefix + "spec.containers[1].env[1]");
    CHECK(d.violations[0].message.find("selects the pod template of this " + std::string(k.kind)) !=
          std::string::npos);
  }
}

TEST_CASE("controller-owned objects get a warning, never a denial", "[rules][controller]") {
  json p = pod();
  setEnvFlag(p, "true");
  p["metadata"]["ownerReferences"] = {{{"apiVersion", "apps/v1"},
                                       {"kind", "ReplicaSet"},
                                       {"name", "api-7d9"},
                                       {"uid", "u"},
                                       {"controller", true}}};
  auto d = validate(p, policy::State());
  CHECK(d.allowed);
  CHECK(d.violations.empty());
  CHECK(ruleIds(d.warnings) == Ids{"hybrid-flag-unapproved"});
  SECTION("an owner that is not the controller does not count") {
    p["metadata"]["ownerReferences"][0]["controller"] = false;
    CHECK_FALSE(validate(p, policy::State()).allowed);
  }
}

TEST_CASE("UPDATE applies only when it adds the flag", "[rules][update]") {
  json old = pod();
  setEnvFlag(old, "true");
  json updated = old;
  updated["metadata"]["labels"]["team"] = "x";
  CHECK(validate(updated, policy::State(), policy::Operation::Update, old).allowed);
  json without = pod();
  CHECK_FALSE(validate(updated, policy::State(), policy::Operation::Update, without).allowed);
}

TEST_CASE("exempt namespaces are never evaluated", "[rules][exempt]") {
  for (const char* ns : {"kube-system", "kube-public", "kube-node-lease", "platform"}) {
    json p = pod(ns);
    setEnvFlag(p, "true");
    auto d = validate(p, policy::State());
    CHECK(d.allowed);
    CHECK_FALSE(d.evaluated);
  }
}

TEST_CASE("DELETE of a workload is always allowed", "[rules]") {
  json p = pod();
  setEnvFlag(p, "true");
  auto d = validate(json(), policy::State(), policy::Operation::Delete, p);
  CHECK(d.allowed);
}

TEST_CASE("invalid-object for workloads", "[rules][invalid-object]") {
  json p = pod();
  std::string path;
  SECTION("containers as a map") {
    p["spec"]["containers"] = {{"name", "istio-proxy"}};
    path = "spec.containers";
  }
  SECTION("the flag's env value as a number") {
    p["spec"]["containers"][1]["env"].push_back({{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", 1}});
    path = "spec.containers[1].env[1].value";
  }
  SECTION("annotations with a boolean value") {
    p["metadata"]["annotations"] = {{"sidecar.istio.io/inject", true}};
    path = "metadata.annotations[\"sidecar.istio.io/inject\"]";
  }
  SECTION("missing metadata") {
    p.erase("metadata");
    path = "metadata";
  }
  SECTION("a Deployment whose template is a list") {
    p = {{"apiVersion", "apps/v1"},
         {"kind", "Deployment"},
         {"metadata", {{"name", "d"}, {"namespace", "payments"}}},
         {"spec", {{"template", json::array()}}}};
    path = "spec.template";
  }
  auto d = validate(p, policy::State());
  CHECK_FALSE(d.allowed);
  REQUIRE(ruleIds(d.violations) == Ids{"invalid-object"});
  CHECK(d.violations[0].path == path);
}

TEST_CASE("certificate-not-mounted", "[rules][certificate-not-mounted]") {
  policy::State state;
  test::admit(state, hybridSidecar());
  json p = pod();
  SECTION("no mount at all") {
    auto d = validate(p, state);
    CHECK(d.allowed);
    REQUIRE(ruleIds(d.warnings) == Ids{"certificate-not-mounted"});
    CHECK(d.warnings[0].path == "metadata.annotations[\"sidecar.istio.io/userVolumeMount\"]");
  }
  SECTION("a userVolumeMount that covers the folder") {
    p["metadata"]["annotations"] = {
        {"sidecar.istio.io/userVolumeMount",
         R"({"tls-secret":{"mountPath":"/etc/istio/tls-certs/","readOnly":true}})"}};
    CHECK(validate(p, state).warnings.empty());
  }
  SECTION("a mount of a sibling folder does not cover it") {
    p["metadata"]["annotations"] = {
        {"sidecar.istio.io/userVolumeMount", R"({"x":{"mountPath":"/etc/istio/tls"}})"}};
    CHECK(ruleIds(validate(p, state).warnings) == Ids{"certificate-not-mounted"});
  }
  SECTION("a volumeMount on the injected istio-proxy container covers it") {
    p["spec"]["containers"][1]["volumeMounts"] = {
        {{"name", "tls"}, {"mountPath", "/etc/istio/tls-certs"}}};
    CHECK(validate(p, state).warnings.empty());
  }
  SECTION("pods the Sidecar does not select are not warned") {
    p["metadata"]["labels"]["app"] = "web";
    CHECK(validate(p, state).warnings.empty());
  }
}

TEST_CASE("pathUnder compares whole components", "[paths]") {
  CHECK(policy::pathUnder("/etc/istio/tls-certs/tls.crt", "/etc/istio/tls-certs/"));
  CHECK(policy::pathUnder("/etc/istio/tls-certs/tls.crt", "/etc/istio/tls-certs"));
  CHECK(policy::pathUnder("/etc/istio/tls-certs/a/b", "/etc/istio"));
  CHECK_FALSE(policy::pathUnder("/etc/istio/tls-certs-evil/x", "/etc/istio/tls-certs/"));
  CHECK_FALSE(policy::pathUnder("/etc/istio/tls-certs-evil/x", "/etc/istio/tls-certs"));
  CHECK(policy::pathUnder("/anything", "/"));
}
