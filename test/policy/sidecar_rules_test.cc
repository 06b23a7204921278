// DESIGN §4, Sidecar rules: each rule violated alone by a small change to a Sidecar that passes.
#include <catch2/catch.hpp>

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
  namespaces:
    - name: payments
      maxWorkloads: 2
    - pattern: "edge-[a-z]+"
  tls:
    certificatePaths: [/etc/istio/tls-certs/, /etc/istio/tls-ca-certs/]
  ports: [8443, {from: 9000, to: 9099}]
)";

json goodSidecar() {
  return yaml(R"(
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api, namespace: payments}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - port: {number: 8443, protocol: HTTPS, name: external}
    defaultEndpoint: 0.0.0.0:8080
    tls:
      mode: MUTUAL
      serverCertificate: /etc/istio/tls-certs/tls.crt
      privateKey: /etc/istio/tls-certs/tls.key
      caCertificates: /etc/istio/tls-ca-certs/ca.crt
  - port: {number: 8080, protocol: HTTP, name: internal}
    defaultEndpoint: 0.0.0.0:8080
)");
}

json& tls(json& s) {
  return s["spec"]["ingress"][0]["tls"];
}

struct Outcome {
  bool allowed;
  Ids rules;
  std::vector<policy::Finding> violations;
};

Outcome run(const json& sidecar, const char* policyYaml = kPolicy,
            const policy::State& state = policy::State()) {
  auto p = policyFrom(policyYaml);
  auto d = decideOn(sidecar, *p, state);
  return {d.allowed, ruleIds(d.violations), d.violations};
}

}  // namespace

TEST_CASE("a sound hybrid Sidecar is admitted and counted", "[rules]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  auto d = decideOn(goodSidecar(), *p, state);
  CHECK(d.allowed);
  CHECK(d.evaluated);
  CHECK(d.violations.empty());
  CHECK(d.warnings.empty());
  REQUIRE(d.change.kind == policy::StateChange::Kind::Upsert);
  CHECK(d.change.sidecar.namespace_ == "payments");
  CHECK(d.change.sidecar.name == "api");
  CHECK(d.change.sidecar.certificatePaths ==
        std::vector<std::string>{"/etc/istio/tls-certs/tls.crt", "/etc/istio/tls-certs/tls.key",
                                 "/etc/istio/tls-ca-certs/ca.crt"});
}

TEST_CASE("a Sidecar without tls is not hybrid-guard's business", "[rules]") {
  json s = goodSidecar();
  s["spec"]["ingress"][0].erase("tls");
  s["metadata"]["namespace"] = "istio-system";
  auto p = policyFrom(kPolicy);
  auto d = decideOn(s, *p, policy::State());
  CHECK(d.allowed);
  CHECK_FALSE(d.evaluated);
  CHECK(d.change.kind == policy::StateChange::Kind::None);
}

TEST_CASE("tls: {} makes a Sidecar hybrid", "[rules]") {
  json s = goodSidecar();
  tls(s) = json::object();
  auto out = run(s);
  CHECK_FALSE(out.allowed);
  // Unset mode means PASSTHROUGH, which the default modes do not allow.
  CHECK(out.rules == Ids{"tls-mode"});
}

TEST_CASE("mesh-root-namespace", "[rules][mesh-root-namespace]") {
  json s = goodSidecar();
  s["metadata"]["namespace"] = "istio-system";
  SECTION("denied even when the allowlist names the mesh root namespace") {
    auto out = run(s, R"(
  namespaces: [istio-system]
  meshRootNamespace: istio-system
)");
    CHECK(out.rules == Ids{"mesh-root-namespace"});
    CHECK(out.violations[0].path == "metadata.namespace");
    CHECK(out.violations[0].message ==
          "a hybrid Sidecar in the mesh root namespace \"istio-system\" could apply to every "
          "namespace; create it in the namespace of the workload it serves");
  }
  SECTION("reported instead of namespace-not-allowed, and without quota rules") {
    auto out = run(s, "  namespaces: []\n  maxWorkloads: 0\n");
    CHECK(out.rules == Ids{"mesh-root-namespace"});
  }
  SECTION("a custom mesh root namespace") {
    s["metadata"]["namespace"] = "mesh-root";
    auto out = run(s, "  meshRootNamespace: mesh-root\n  namespaces: [mesh-root]\n");
    CHECK(out.rules == Ids{"mesh-root-namespace"});
  }
}

TEST_CASE("namespace-not-allowed", "[rules][namespace-not-allowed]") {
  json s = goodSidecar();
  SECTION("no entry matches") {
    s["metadata"]["namespace"] = "shop";
    auto out = run(s);
    CHECK(out.rules == Ids{"namespace-not-allowed"});
    CHECK(out.violations[0].path == "metadata.namespace");
    CHECK(out.violations[0].message ==
          "hybrid mode is not allowed in namespace \"shop\"; ask the platform team to add it to "
          "the policy's spec.namespaces");
  }
  SECTION("a pattern is a full match") {
    s["metadata"]["namespace"] = "edge-eu";
    CHECK(run(s).allowed);
    s["metadata"]["namespace"] = "my-edge-eu";
    CHECK(run(s).rules == Ids{"namespace-not-allowed"});
    s["metadata"]["namespace"] = "edge-eu1";
    CHECK(run(s).rules == Ids{"namespace-not-allowed"});
  }
  SECTION("the built-in default policy allows hybrid mode nowhere") {
    auto d = decideOn(s, *policy::defaultPolicy(), policy::State());
    CHECK(ruleIds(d.violations) == Ids{"namespace-not-allowed"});
  }
  SECTION("the request namespace counts when metadata has none") {
    s["metadata"].erase("namespace");
    test::TestRequest r(s);
    r.request.namespace_ = "payments";
    auto d = policy::decide(r.request, *policyFrom(kPolicy), policy::State());
    CHECK(d.allowed);
    r.request.namespace_ = "shop";
    d = policy::decide(r.request, *policyFrom(kPolicy), policy::State());
    CHECK(ruleIds(d.violations) == Ids{"namespace-not-allowed"});
  }
}

TEST_CASE("requester-not-allowed", "[rules][requester-not-allowed]") {
  std::string withRequesters = std::string(kPolicy) + R"(
  requesters:
    users: ["system:serviceaccount:platform:deployer", {pattern: "ci-.*"}]
    groups: [platform-admins]
)";
  auto p = policyFrom(withRequesters);
  auto decideAs = [&](std::string user, std::vector<std::string> groups) {
    test::TestRequest r(goodSidecar());
    r.request.user = {std::move(user), std::move(groups)};
    return policy::decide(r.request, *p, policy::State());
  };
  CHECK(decideAs("system:serviceaccount:platform:deployer", {}).allowed);
  CHECK(decideAs("ci-runner", {}).allowed);
  CHECK(decideAs("bob", {"system:authenticated", "platform-admins"}).allowed);
  auto denied = decideAs("bob", {"system:authenticated"});
  CHECK(ruleIds(denied.violations) == Ids{"requester-not-allowed"});
  CHECK(denied.violations[0].message ==
        "\"bob\" may not create or change hybrid Sidecars; ask a requester the policy's "
        "spec.requesters lists");
  CHECK(ruleIds(decideAs("xci-runner", {}).violations) == Ids{"requester-not-allowed"});
  SECTION("absent requesters: anyone RBAC lets through") {
    test::TestRequest r(goodSidecar());
    r.request.user = {"anyone", {}};
    CHECK(policy::decide(r.request, *policyFrom(kPolicy), policy::State()).allowed);
  }
}

TEST_CASE("workload-selector-required", "[rules][workload-selector-required]") {
  json s = goodSidecar();
  SECTION("absent") {
    s["spec"].erase("workloadSelector");
  }
  SECTION("empty labels") {
    s["spec"]["workloadSelector"]["labels"] = json::object();
  }
  auto out = run(s);
  CHECK(out.rules == Ids{"workload-selector-required"});
  CHECK(out.violations[0].path == "spec.workloadSelector.labels");
}

TEST_CASE("workload-selector-required can be turned off", "[rules][workload-selector-required]") {
  json s = goodSidecar();
  s["spec"].erase("workloadSelector");
  CHECK(run(s, (std::string(kPolicy) + "  requireWorkloadSelector: false\n").c_str()).allowed);
}

TEST_CASE("tls-mode", "[rules][tls-mode]") {
  json s = goodSidecar();
  SECTION("ISTIO_MUTUAL is always a violation") {
    tls(s) = {{"mode", "ISTIO_MUTUAL"}};
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-mode"});
    CHECK(out.violations[0].path == "spec.ingress[0].tls.mode");
    CHECK(out.violations[0].message ==
          "ISTIO_MUTUAL is never valid on sidecar ingress; use SIMPLE or MUTUAL with "
          "certificates mounted into the proxy");
  }
  SECTION("AUTO_PASSTHROUGH is always a violation") {
    tls(s) = {{"mode", "AUTO_PASSTHROUGH"}};
    CHECK(run(s).rules == Ids{"tls-mode"});
  }
  SECTION("OPTIONAL_MUTUAL is not in the default modes") {
    tls(s)["mode"] = "OPTIONAL_MUTUAL";
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-mode"});
    CHECK(out.violations[0].message ==
          "mode OPTIONAL_MUTUAL is not allowed by the policy; use SIMPLE or MUTUAL");
  }
  SECTION("unset mode is PASSTHROUGH") {
    tls(s).erase("mode");
    tls(s).erase("caCertificates");
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-mode"});
    CHECK(out.violations[0].message ==
          "mode PASSTHROUGH (the default when mode is unset) is not allowed by the policy; use "
          "SIMPLE or MUTUAL");
  }
  SECTION("a policy that allows only SIMPLE") {
    auto out = run(s, "  namespaces: [payments]\n  tls:\n    modes: [SIMPLE]\n");
    CHECK(out.rules == Ids{"tls-mode"});
    CHECK(out.violations[0].message == "mode MUTUAL is not allowed by the policy; use SIMPLE");
  }
  SECTION("an unknown mode") {
    tls(s)["mode"] = "STRICT";
    CHECK(run(s).rules == Ids{"tls-mode"});
  }
}

TEST_CASE("tls-port-protocol", "[rules][tls-port-protocol]") {
  json s = goodSidecar();
  SECTION("HTTP") {
    s["spec"]["ingress"][0]["port"]["protocol"] = "HTTP";
  }
  SECTION("missing") {
    s["spec"]["ingress"][0]["port"].erase("protocol");
  }
  auto out = run(s);
  CHECK(out.rules == Ids{"tls-port-protocol"});
  CHECK(out.violations[0].path == "spec.ingress[0].port.protocol");
}

TEST_CASE("tls-port-protocol accepts HTTPS and TLS in any case", "[rules][tls-port-protocol]") {
  json s = goodSidecar();
  for (const char* protocol : {"https", "TLS", "tls", "Https"}) {
    s["spec"]["ingress"][0]["port"]["protocol"] = protocol;
    CHECK(run(s).allowed);
  }
}

TEST_CASE("tls-unsupported-field", "[rules][tls-unsupported-field]") {
  json s = goodSidecar();
  std::string field;
  SECTION("subjectAltNames") {
    field = "subjectAltNames";
    tls(s)[field] = {"spiffe://x"};
  }
  SECTION("httpsRedirect") {
    field = "httpsRedirect";
    tls(s)[field] = true;
  }
  SECTION("credentialName") {
    field = "credentialName";
    tls(s)[field] = "my-secret";
  }
  SECTION("credentialNames") {
    field = "credentialNames";
    tls(s)[field] = {"a", "b"};
  }
  SECTION("tlsCertificates") {
    field = "tlsCertificates";
    tls(s)[field] = json::array({{{"serverCertificate", "/etc/istio/tls-certs/a"}}});
  }
  auto out = run(s);
  CHECK(out.rules == Ids{"tls-unsupported-field"});
  CHECK(out.violations[0].path == "spec.ingress[0].tls." + field);
}

TEST_CASE("tls-unsupported-field: httpsRedirect false is fine", "[rules][tls-unsupported-field]") {
  json s = goodSidecar();
  tls(s)["httpsRedirect"] = false;
  CHECK(run(s).allowed);
}

TEST_CASE("tls-credentials", "[rules][tls-credentials]") {
  json s = goodSidecar();
  SECTION("MUTUAL without caCertificates") {
    tls(s).erase("caCertificates");
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-credentials"});
    CHECK(out.violations[0].path == "spec.ingress[0].tls.caCertificates");
  }
  SECTION("SIMPLE without privateKey") {
    tls(s)["mode"] = "SIMPLE";
    tls(s).erase("caCertificates");
    tls(s).erase("privateKey");
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-credentials"});
    CHECK(out.violations[0].path == "spec.ingress[0].tls.privateKey");
    CHECK(out.violations[0].message ==
          "SIMPLE needs privateKey: the path of a file mounted into the proxy");
  }
  SECTION("SIMPLE without serverCertificate (empty string)") {
    tls(s)["mode"] = "SIMPLE";
    tls(s).erase("caCertificates");
    tls(s)["serverCertificate"] = "";
    CHECK(run(s).rules == Ids{"tls-credentials"});
  }
  SECTION("caCrl with SIMPLE") {
    tls(s)["mode"] = "SIMPLE";
    tls(s).erase("caCertificates");
    tls(s)["caCrl"] = "/etc/istio/tls-ca-certs/crl.pem";
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-credentials"});
    CHECK(out.violations[0].path == "spec.ingress[0].tls.caCrl");
  }
  SECTION("SIMPLE with both files passes") {
    tls(s)["mode"] = "SIMPLE";
    tls(s).erase("caCertificates");
    CHECK(run(s).allowed);
  }
}

TEST_CASE("tls-certificate-path", "[rules][tls-certificate-path]") {
  json s = goodSidecar();
  SECTION("not absolute") {
    tls(s)["privateKey"] = "tls-certs/tls.key";
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-certificate-path"});
    CHECK(out.violations[0].path == "spec.ingress[0].tls.privateKey");
  }
  SECTION("holds ..") {
    tls(s)["serverCertificate"] = "/etc/istio/tls-certs/../../../etc/shadow";
    CHECK(run(s).rules == Ids{"tls-certificate-path"});
  }
  SECTION("outside the allowed folders, compared by whole components") {
    tls(s)["serverCertificate"] = "/etc/istio/tls-certs-evil/x";
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-certificate-path"});
    CHECK(out.violations[0].message ==
          "\"/etc/istio/tls-certs-evil/x\" is outside the allowed certificate folders "
          "(/etc/istio/tls-certs/, /etc/istio/tls-ca-certs/); mount the file under one of them");
  }
  SECTION("caCrl is checked too") {
    tls(s)["caCrl"] = "/tmp/crl.pem";
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-certificate-path"});
    CHECK(out.violations[0].path == "spec.ingress[0].tls.caCrl");
  }
  SECTION("without certificatePaths any absolute path passes") {
    tls(s)["serverCertificate"] = "/var/run/anything/tls.crt";
    CHECK(run(s, "  namespaces: [payments]\n").allowed);
  }
}

TEST_CASE("tls-min-version", "[rules][tls-min-version]") {
  json s = goodSidecar();
  SECTION("below the minimum") {
    tls(s)["minProtocolVersion"] = "TLSV1_1";
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-min-version"});
    CHECK(out.violations[0].path == "spec.ingress[0].tls.minProtocolVersion");
    CHECK(out.violations[0].message ==
          "TLSV1_1 is below the policy minimum TLSV1_2; set TLSV1_2 or later");
  }
  SECTION("max below the minimum") {
    tls(s)["maxProtocolVersion"] = "TLSV1_1";
    auto out = run(s);
    CHECK(out.rules == Ids{"tls-min-version"});
    CHECK(out.violations[0].path == "spec.ingress[0].tls.maxProtocolVersion");
  }
  SECTION("unset and TLS_AUTO count as TLSV1_2") {
    CHECK(run(s).allowed);
    tls(s)["minProtocolVersion"] = "TLS_AUTO";
    tls(s)["maxProtocolVersion"] = "TLS_AUTO";
    CHECK(run(s).allowed);
  }
  SECTION("a policy minimum of TLSV1_3 refuses an unset minimum") {
    std::string p = "  namespaces: [payments]\n  tls:\n    minProtocolVersion: TLSV1_3\n";
    CHECK(run(s, p.c_str()).rules == Ids{"tls-min-version"});
    tls(s)["minProtocolVersion"] = "TLSV1_3";
    CHECK(run(s, p.c_str()).allowed);
  }
}

TEST_CASE("tls-cipher-suites", "[rules][tls-cipher-suites]") {
  json s = goodSidecar();
  std::string p =
      std::string(kPolicy).replace(std::string(kPolicy).find("  tls:\n"), 7,
                                   "  tls:\n    cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]\n");
  tls(s)["cipherSuites"] = {"ECDHE-ECDSA-AES256-GCM-SHA384", "AES128-SHA"};
  auto out = run(s, p.c_str());
  CHECK(out.rules == Ids{"tls-cipher-suites"});
  CHECK(out.violations[0].path == "spec.ingress[0].tls.cipherSuites[1]");
  SECTION("any suite when the policy lists none") {
    CHECK(run(s).allowed);
  }
}

TEST_CASE("port-not-allowed", "[rules][port-not-allowed]") {
  json s = goodSidecar();
  json& number = s["spec"]["ingress"][0]["port"]["number"];
  SECTION("reserved") {
    number = 15006;
    auto out = run(s, "  namespaces: [payments]\n");
    CHECK(out.rules == Ids{"port-not-allowed"});
    CHECK(out.violations[0].path == "spec.ingress[0].port.number");
    CHECK(out.violations[0].message ==
          "port 15006 is reserved by Istio for the proxy itself; use an application port");
  }
  SECTION("outside 1..65535") {
    number = 70000;
    CHECK(run(s, "  namespaces: [payments]\n").rules == Ids{"port-not-allowed"});
  }
  SECTION("not in ports") {
    number = 9443;
    auto out = run(s);
    CHECK(out.rules == Ids{"port-not-allowed"});
    CHECK(out.violations[0].message ==
          "port 9443 may not carry tls; the policy allows 8443, 9000-9099");
  }
  SECTION("in a range") {
    number = 9099;
    CHECK(run(s).allowed);
  }
  SECTION("missing") {
    s["spec"]["ingress"][0]["port"].erase("number");
    CHECK(run(s).rules == Ids{"port-not-allowed"});
  }
}

TEST_CASE("only listeners with tls are checked", "[rules]") {
  json s = goodSidecar();
  // The second listener is plain HTTP on a reserved port: not ours to judge.
  s["spec"]["ingress"][1]["port"]["number"] = 15006;
  CHECK(run(s).allowed);
}

TEST_CASE("every violation is listed at once", "[rules]") {
  json s = goodSidecar();
  s["metadata"]["namespace"] = "shop";
  s["spec"].erase("workloadSelector");
  tls(s)["mode"] = "ISTIO_MUTUAL";
  s["spec"]["ingress"][0]["port"]["number"] = 15001;
  auto out = run(s);
  CHECK(out.rules ==
        Ids{"namespace-not-allowed", "workload-selector-required", "tls-mode", "port-not-allowed"});
}

TEST_CASE("invalid-object for Sidecars", "[rules][invalid-object]") {
  json s = goodSidecar();
  std::string path;
  SECTION("a port number as a string") {
    s["spec"]["ingress"][0]["port"]["number"] = "8443";
    path = "spec.ingress[0].port.number";
  }
  SECTION("ingress as a map") {
    s["spec"]["ingress"] = {{"port", {{"number", 8443}}}, {"tls", json::object()}};
    path = "spec.ingress";
  }
  SECTION("missing metadata") {
    s.erase("metadata");
    path = "metadata";
  }
  SECTION("tls as a string") {
    tls(s) = "SIMPLE";
    path = "spec.ingress[0].tls";
  }
  SECTION("labels with a number value") {
    s["spec"]["workloadSelector"]["labels"]["version"] = 2;
    path = "spec.workloadSelector.labels.version";
  }
  auto out = run(s);
  CHECK_FALSE(out.allowed);
  REQUIRE(out.rules == Ids{"invalid-object"});
  CHECK(out.violations[0].path == path);
}

TEST_CASE("selector-overlap", "[rules][selector-overlap]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  json first = goodSidecar();
  test::admit(state, first);
  json second = goodSidecar();
  second["metadata"]["name"] = "api-v2";
  SECTION("selectors a pod can satisfy together") {
    second["spec"]["workloadSelector"]["labels"] = {{"version", "v2"}};
    auto d = decideOn(second, *p, state);
    CHECK(d.allowed);
    REQUIRE(ruleIds(d.warnings) == Ids{"selector-overlap"});
    CHECK(d.warnings[0].message.find("\"api\"") != std::string::npos);
  }
  SECTION("disjoint selectors") {
    second["spec"]["workloadSelector"]["labels"] = {{"app", "web"}};
    CHECK(decideOn(second, *p, state).warnings.empty());
  }
  SECTION("neither has a selector") {
    auto relaxed = policyFrom(std::string(kPolicy) + "  requireWorkloadSelector: false\n");
    policy::State s2;
    json a = goodSidecar();
    a["spec"].erase("workloadSelector");
    test::admit(s2, a);
    second["spec"].erase("workloadSelector");
    CHECK(ruleIds(decideOn(second, *relaxed, s2).warnings) == Ids{"selector-overlap"});
  }
  SECTION("the same Sidecar again (UPDATE) does not overlap with itself") {
    json changed = first;
    tls(changed)["minProtocolVersion"] = "TLSV1_3";
    CHECK(decideOn(changed, *p, state, policy::Operation::Update, first).warnings.empty());
  }
}

TEST_CASE("enforcement modes", "[rules][enforcement]") {
  json s = goodSidecar();
  tls(s)["mode"] = "ISTIO_MUTUAL";
  SECTION("deny rejects and does not count") {
    auto d = decideOn(s, *policyFrom(kPolicy), policy::State());
    CHECK_FALSE(d.allowed);
    CHECK(d.change.kind == policy::StateChange::Kind::None);
    CHECK(d.outcome() == "deny");
  }
  SECTION("warn admits, returns each violation as a warning, and counts") {
    auto d =
        decideOn(s, *policyFrom(std::string(kPolicy) + "  enforcement: warn\n"), policy::State());
    CHECK(d.allowed);
    CHECK(ruleIds(d.violations) == Ids{"tls-mode"});
    auto warnings = d.admissionWarnings();
    REQUIRE(warnings.size() == d.violations.size());
    CHECK(warnings[0].rfind("[tls-mode] spec.ingress[0].tls.mode: ", 0) == 0);
    CHECK(d.change.kind == policy::StateChange::Kind::Upsert);
    CHECK(d.outcome() == "warn");
  }
  SECTION("dryrun admits and only records") {
    auto d =
        decideOn(s, *policyFrom(std::string(kPolicy) + "  enforcement: dryrun\n"), policy::State());
    CHECK(d.allowed);
    CHECK_FALSE(d.violations.empty());
    CHECK(d.admissionWarnings().empty());
    CHECK(d.outcome() == "warn");
  }
}

TEST_CASE("a denial message stays bounded however many violations an object makes",
          "[rules][enforcement]") {
  auto p = policyFrom(R"(
  namespaces: [{name: payments}]
  tls:
    certificatePaths: [/etc/istio/tls-certs/, /etc/istio/tls-ca-certs/]
    cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]
)");
  SECTION("a 1 MiB value is cut in its line") {
    json s = goodSidecar();
    tls(s)["serverCertificate"] = "/" + std::string(1 << 20, 'x');
    auto d = decideOn(s, *p, policy::State());
    REQUIRE_FALSE(d.allowed);
    std::string message = d.denialMessage();
    auto line = message.substr(message.find('\n') + 1);
    CHECK(line.rfind("[tls-certificate-path] spec.ingress[0].tls.serverCertificate: ", 0) == 0);
    CHECK(line.size() == 1024);
    CHECK(line.substr(line.size() - std::string("…").size()) == "…");
  }
  SECTION("thousands of violations: the first ones, then how many more") {
    json s = goodSidecar();
    json suites = json::array();
    for (int i = 0; i < 3000; ++i) suites.push_back("NOT-A-SUITE-" + std::to_string(i));
    tls(s)["cipherSuites"] = suites;
    auto d = decideOn(s, *p, policy::State());
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.violations.size() == 3000);
    std::string message = d.denialMessage();
    CHECK(message.size() <= 16 * 1024);
    std::vector<std::string> lines;
    for (size_t start = 0, end; start != std::string::npos;
         start = end == std::string::npos ? end : end + 1) {
      end = message.find('\n', start);
      lines.push_back(message.substr(start, end == std::string::npos ? end : end - start));
    }
    CHECK(lines.front() == "hybrid-guard denied hybrid Sidecar " + d.namespace_ + "/" + d.name +
                               ": 3000 violations");
    size_t listed = lines.size() - 2;  // the summary and the count
    REQUIRE(listed > 10);
    CHECK(lines[1] == d.violations[0].str());
    CHECK(lines[listed] == d.violations[listed - 1].str());
    CHECK(lines.back() == "… and " + std::to_string(3000 - listed) +
                              " more violations (hybrid-guard eval lists every one)");
  }
  SECTION("a few violations are all listed, whole") {
    json s = goodSidecar();
    tls(s)["cipherSuites"] = {"NOT-A-SUITE-1", "NOT-A-SUITE-2"};
    auto d = decideOn(s, *p, policy::State());
    std::string expected = "hybrid-guard denied hybrid Sidecar " + d.namespace_ + "/" + d.name +
                           ": 2 violations\n" + d.violations[0].str() + "\n" +
                           d.violations[1].str();
    CHECK(d.denialMessage() == expected);
  }
}
