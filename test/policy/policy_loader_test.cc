// DESIGN §3: the HybridModePolicy schema, its defaults, and every policy error.
#include <catch2/catch.hpp>

#include "policy/policy.h"

using namespace hybrid_guard::policy;

namespace {

const std::string kHeader =
    "apiVersion: hybrid-guard.io/v1alpha1\nkind: HybridModePolicy\nmetadata:\n  name: p\nspec:\n";

std::vector<PolicyError> errorsOf(const std::string& spec) {
  auto loaded = loadPolicy(kHeader + spec, "p.yaml");
  REQUIRE_FALSE(loaded.ok());
  return loaded.error();
}

std::string onlyError(const std::string& spec) {
  auto errors = errorsOf(spec);
  REQUIRE(errors.size() == 1);
  return errors[0].str();
}

}  // namespace

TEST_CASE("defaults", "[policy]") {
  auto loaded = loadPolicy(kHeader + "  namespaces: [payments]\n", "p.yaml");
  REQUIRE(loaded.ok());
  const Policy& p = **loaded;
  CHECK(p.name == "p");
  CHECK(p.enforcement == Enforcement::Deny);
  CHECK(p.meshRootNamespace == "istio-system");
  CHECK(p.namespaceQuota("payments") == 1);
  CHECK_FALSE(p.namespaceQuota("shop").has_value());
  CHECK(p.clusterMaxWorkloads == 10000);
  CHECK_FALSE(p.requestersSet);
  CHECK(p.requireWorkloadSelector);
  CHECK(p.tlsModes == std::vector<TlsMode>{TlsMode::Simple, TlsMode::Mutual});
  CHECK(p.minTlsVersion == TlsVersion::V1_2);
  CHECK(p.cipherSuites.empty());
  CHECK_FALSE(p.certificatePaths.has_value());
  CHECK_FALSE(p.ports.has_value());
  CHECK(p.injectionEnabled);
  CHECK(p.isExempt("kube-system"));
  CHECK(p.isExempt("kube-public"));
  CHECK(p.isExempt("kube-node-lease"));
  CHECK_FALSE(p.isExempt("payments"));
}

TEST_CASE("the design's example policy loads", "[policy]") {
  auto loaded = loadPolicy(kHeader + R"(  enforcement: deny
  meshRootNamespace: istio-system
  exemptNamespaces:
    - kube-system
    - pattern: "kube-.*"
  namespaces:
    - name: payments
      maxWorkloads: 2
    - pattern: "edge-[a-z0-9-]+"
      maxWorkloads: 1
  maxWorkloads: 10
  requesters:
    users: ["system:serviceaccount:platform:deployer", {pattern: "ci-.*"}]
    groups: ["platform-admins"]
  requireWorkloadSelector: true
  tls:
    modes: [SIMPLE, MUTUAL]
    minProtocolVersion: TLSV1_2
    cipherSuites: []
    certificatePaths:
      - /etc/istio/tls-certs/
      - /etc/istio/tls-ca-certs/
  ports:
    - 8443
    - {from: 9000, to: 9099}
  injection:
    enabled: true
)",
                           "p.yaml");
  REQUIRE(loaded.ok());
  const Policy& p = **loaded;
  CHECK(p.namespaceQuota("payments") == 2);
  CHECK(p.namespaceQuota("edge-eu-1") == 1);
  CHECK(p.clusterMaxWorkloads == 10);
  CHECK(p.isExempt("kube-flannel"));
  CHECK(p.requesterUsers.matches("ci-bot"));
  CHECK_FALSE(p.requesterUsers.matches("xci-bot"));
  CHECK(p.allowsPort(8443));
  CHECK(p.allowsPort(9050));
  CHECK_FALSE(p.allowsPort(8080));
}

TEST_CASE("an exact entry wins over patterns; patterns apply in list order", "[policy]") {
  auto loaded = loadPolicy(kHeader + R"(  namespaces:
    - {pattern: "team-.*", maxWorkloads: 3}
    - {pattern: "team-a", maxWorkloads: 5}
    - {name: team-a, maxWorkloads: 7}
)",
                           "p.yaml");
  REQUIRE(loaded.ok());
  CHECK((*loaded)->namespaceQuota("team-a") == 7);
  CHECK((*loaded)->namespaceQuota("team-b") == 3);
}

TEST_CASE("JSON policies load too", "[policy]") {
  auto loaded = loadPolicy(
      R"({"apiVersion": "hybrid-guard.io/v1alpha1", "kind": "HybridModePolicy",
          "metadata": {"name": "j"}, "spec": {"namespaces": [{"name": "a", "maxWorkloads": 3}]}})",
      "p.json");
  REQUIRE(loaded.ok());
  CHECK((*loaded)->namespaceQuota("a") == 3);
}

TEST_CASE("policy errors name file, line and field path", "[policy][errors]") {
  CHECK(onlyError("  namespaces:\n    - pattern: \"edge-[\"\n") ==
        "p.yaml:7: spec.namespaces[0].pattern: invalid RE2 pattern \"edge-[\": missing ]: [");
  CHECK(onlyError("  namespaces:\n    - name: a\n      maxWorkloads: -1\n") ==
        "p.yaml:8: spec.namespaces[0].maxWorkloads: must not be negative (0 allows no hybrid "
        "workload)");
  CHECK(onlyError("  namespaces: [a, b, a]\n") ==
        "p.yaml:6: spec.namespaces[2]: namespace \"a\" is listed twice");
  CHECK(onlyError("  tls:\n    modes: [SIMPLE, STRICT]\n") ==
        "p.yaml:7: spec.tls.modes[1]: unknown TLS mode \"STRICT\" (use PASSTHROUGH, SIMPLE, "
        "MUTUAL or OPTIONAL_MUTUAL)");
  CHECK(onlyError("  tls:\n    minProtocolVersion: TLSV1_4\n") ==
        "p.yaml:7: spec.tls.minProtocolVersion: unknown TLS version \"TLSV1_4\" (use TLSV1_0, "
        "TLSV1_1, TLSV1_2 or TLSV1_3)");
  CHECK(onlyError("  tls:\n    modes: [ISTIO_MUTUAL]\n") ==
        "p.yaml:7: spec.tls.modes[0]: ISTIO_MUTUAL is never accepted on sidecar ingress; use "
        "SIMPLE or MUTUAL");
  CHECK(onlyError("  tls:\n    modes: [AUTO_PASSTHROUGH]\n").find("AUTO_PASSTHROUGH is never") !=
        std::string::npos);
  CHECK(onlyError("  ports: [0]\n") == "p.yaml:6: spec.ports[0]: port 0 is outside 1..65535");
  CHECK(onlyError("  ports: [15021]\n") ==
        "p.yaml:6: spec.ports[0]: port 15021 is reserved by Istio and cannot carry tls");
  CHECK(onlyError("  ports:\n    - {from: 14000, to: 16000}\n") ==
        "p.yaml:7: spec.ports[0]: port 15000 is reserved by Istio and cannot carry tls");
  CHECK(onlyError("  maxWorkloads: 10001\n") ==
        "p.yaml:6: spec.maxWorkloads: must be at most 10000 (the supported scale)");
  CHECK(onlyError("  tls:\n    modes: []\n") == "p.yaml:7: spec.tls.modes: must not be empty");
  CHECK(onlyError("  ports: []\n") ==
        "p.yaml:6: spec.ports: must not be empty; remove it to allow any non-reserved port");
  CHECK(onlyError("  tls:\n    certificatePaths: []\n") ==
        "p.yaml:7: spec.tls.certificatePaths: must not be empty; remove it to allow any absolute "
        "path");
  CHECK(onlyError("  requesters: {users: [], groups: []}\n") ==
        "p.yaml:6: spec.requesters: needs at least one user or group; remove \"requesters\" to "
        "let anyone RBAC allows");
  CHECK(onlyError("  requesters: {}\n").find("needs at least one user or group") !=
        std::string::npos);
}

TEST_CASE("unknown fields and wrong types are errors", "[policy][errors]") {
  CHECK(onlyError("  namespace: [a]\n") ==
        "p.yaml:6: spec.namespace: unknown field (known fields here: enforcement, "
        "meshRootNamespace, exemptNamespaces, namespaces, maxWorkloads, requesters, "
        "requireWorkloadSelector, tls, ports, injection)");
  CHECK(onlyError("  maxWorkloads: \"10\"\n") ==
        "p.yaml:6: spec.maxWorkloads: must be an integer, not a string");
  CHECK(onlyError("  enforcement: block\n") ==
        "p.yaml:6: spec.enforcement: must be deny, warn or dryrun, not \"block\"");
  CHECK(onlyError("  namespaces:\n    - name: a\n      maxWorkload: 2\n") ==
        "p.yaml:8: spec.namespaces[0].maxWorkload: unknown field (known fields here: pattern, "
        "name, maxWorkloads)");
  CHECK(onlyError("  injection: {enable: false}\n") ==
        "p.yaml:6: spec.injection.enable: unknown field (known fields here: enabled)");
}

TEST_CASE("every error is reported at once", "[policy][errors]") {
  auto errors = errorsOf(R"(  enforcement: loud
  namespaces:
    - name: a
      maxWorkloads: -2
    - pattern: "(("
  tls:
    modes: [ISTIO_MUTUAL]
  ports: [70000]
  extra: 1
)");
  std::vector<std::string> paths;
  for (const auto& e : errors) paths.push_back(e.path);
  CHECK(paths == std::vector<std::string>{
                     "spec.extra", "spec.enforcement", "spec.namespaces[0].maxWorkloads",
                     "spec.namespaces[1].pattern", "spec.tls.modes[0]", "spec.ports[0]"});
}

TEST_CASE("envelope errors", "[policy][errors]") {
  auto loaded = loadPolicy("apiVersion: v1\nkind: ConfigMap\nspec: {}\n", "cm.yaml");
  REQUIRE_FALSE(loaded.ok());
  REQUIRE(loaded.error().size() == 2);
  CHECK(loaded.error()[0].str() ==
        "cm.yaml:1: apiVersion: must be hybrid-guard.io/v1alpha1, not \"v1\"");
  CHECK(loaded.error()[1].str() == "cm.yaml:2: kind: must be HybridModePolicy, not \"ConfigMap\"");
  auto two = loadPolicy(kHeader + "  namespaces: []\n---\n" + kHeader, "two.yaml");
  REQUIRE_FALSE(two.ok());
  CHECK(two.error()[0].message ==
        "a policy file holds exactly one HybridModePolicy document, found 2");
  auto malformed = loadPolicy(kHeader + "  namespaces: [a\n", "bad.yaml");
  REQUIRE_FALSE(malformed.ok());
  CHECK(malformed.error()[0].file == "bad.yaml");
  CHECK(malformed.error()[0].line > 0);
  auto missing = loadPolicyFile("/nonexistent/policy.yaml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error()[0].str() == "/nonexistent/policy.yaml: cannot read the file");
}
