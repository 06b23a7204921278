// DESIGN §6 over a real TLS connection: the HTTPS server, the admission service and the engine
// together, as the API server calls them.
#include <catch2/catch.hpp>

#include "test/webhook/admission_fixture.h"

using namespace hybrid_guard;
using namespace hybrid_guard::webhook;
using namespace hybrid_guard::webhook::testing;
using nlohmann::json;

namespace {

const char* kPolicy = "  namespaces: [{name: payments, maxWorkloads: 1}]\n";

}  // namespace

TEST_CASE("response envelope: apiVersion, kind and uid echoed (v1 and v1beta1)", "[http][review]") {
  AdmissionFixture f(kPolicy);
  for (const char* version : {"admission.k8s.io/v1", "admission.k8s.io/v1beta1"}) {
    json out = f.postOk("/validate",
                        review(version, std::string("uid-") + version, makeSidecar("shop", "api")));
    CHECK(out["apiVersion"] == version);
    CHECK(out["kind"] == "AdmissionReview");
    CHECK(out["response"]["uid"] == std::string("uid-") + version);
    CHECK(out["response"]["allowed"] == false);
  }
}

TEST_CASE("a denial carries status 403 and every violation", "[http][review]") {
  AdmissionFixture f(kPolicy);
  json s = makeSidecar("shop", "api");
  s["spec"]["ingress"][0]["tls"]["mode"] = "ISTIO_MUTUAL";
  json out = f.postOk("/validate", review("admission.k8s.io/v1", "u1", s));
  const json& r = out["response"];
  CHECK(r["allowed"] == false);
  CHECK(r["status"]["code"] == 403);
  CHECK(r["status"]["message"] ==
        "hybrid-guard denied hybrid Sidecar shop/api: 2 violations\n"
        "[namespace-not-allowed] metadata.namespace: hybrid mode is not allowed in namespace "
        "\"shop\"; ask the platform team to add it to the policy's spec.namespaces\n"
        "[tls-mode] spec.ingress[0].tls.mode: ISTIO_MUTUAL is never valid on sidecar ingress; use "
        "SIMPLE or MUTUAL with certificates mounted into the proxy");
  CHECK_FALSE(r.contains("patch"));
  std::lock_guard lock(f.logMutex);
  REQUIRE(f.logged.size() == 1);
  CHECK(f.logged[0].decision == "deny");
  CHECK(f.logged[0].rules == std::vector<std::string>{"namespace-not-allowed", "tls-mode"});
  CHECK(f.logged[0].uid == "u1");
  CHECK(f.logged[0].user == "alice");
}

TEST_CASE("admitted Sidecars count, select pods for mutation, and DELETE frees them",
          "[http][state]") {
  AdmissionFixture f(kPolicy);
  json s = makeSidecar("payments", "api");
  json first = f.postOk("/validate", review("admission.k8s.io/v1", "a", s));
  CHECK(first["response"]["allowed"] == true);
  CHECK_FALSE(first["response"].contains("status"));
  CHECK(f.state.total() == 1);

  SECTION("the quota holds") {
    json out =
        f.postOk("/validate", review("admission.k8s.io/v1", "b", makeSidecar("payments", "web")));
    CHECK(out["response"]["allowed"] == false);
    CHECK(out["response"]["status"]["message"].get<std::string>().find(
              "[namespace-quota-exceeded]") != std::string::npos);
  }
  SECTION("a dry-run DELETE does not release the slot") {
    json out =
        f.postOk("/validate", review("admission.k8s.io/v1", "d", nullptr, "DELETE", s, true));
    CHECK(out["response"]["allowed"] == true);
    CHECK(f.state.total() == 1);
  }
  SECTION("the mutating webhook patches a selected pod, base64 JSONPatch") {
    json pod = makePod("payments");
    json out = f.postOk("/mutate", review("admission.k8s.io/v1", "m", pod));
    const json& r = out["response"];
    CHECK(r["allowed"] == true);
    REQUIRE(r["patchType"] == "JSONPatch");
    json patch = json::parse(base64Decode(r["patch"].get<std::string>()));
    json patched = pod.patch(patch);
    CHECK(patched["metadata"]["annotations"]["hybrid-guard.io/sidecar"] == "api");
    CHECK(patched["spec"]["containers"][1]["env"][1] ==
          json{{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", "true"}});
    SECTION("and the validating webhook admits the mutated pod") {
      json v = f.postOk("/validate", review("admission.k8s.io/v1", "v", patched));
      CHECK(v["response"]["allowed"] == true);
    }
    SECTION("an already mutated pod gets no patch") {
      json again = f.postOk("/mutate", review("admission.k8s.io/v1", "m2", patched));
      CHECK_FALSE(again["response"].contains("patch"));
      CHECK_FALSE(again["response"].contains("patchType"));
    }
  }
  SECTION("DELETE releases the slot") {
    json out = f.postOk("/validate", review("admission.k8s.io/v1", "del", nullptr, "DELETE", s));
    CHECK(out["response"]["allowed"] == true);
    CHECK(f.state.total() == 0);
    CHECK(f.postOk("/validate", review("admission.k8s.io/v1", "b",
                                       makeSidecar("payments", "web")))["response"]["allowed"] ==
          true);
  }
}

TEST_CASE("a pod that sets the flag unapproved is refused by /validate", "[http]") {
  AdmissionFixture f(kPolicy);
  json pod = makePod("payments");
  pod["spec"]["containers"][1]["env"].push_back(
      {{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", "true"}});
  json out = f.postOk("/validate", review("admission.k8s.io/v1", "p", pod));
  CHECK(out["response"]["allowed"] == false);
  CHECK(out["response"]["status"]["message"] ==
        "hybrid-guard denied object payments/api-7d9-*: 1 violation\n"
        "[hybrid-flag-unapproved] spec.containers[1].env[1]: SIDECAR_IN_HYBRID_MODE is set but no "
        "admitted hybrid Sidecar in namespace \"payments\" selects the pod; create a hybrid "
        "Sidecar whose workloadSelector matches its labels, or remove the flag");
}

TEST_CASE("warn mode returns violations as warnings under 256 characters", "[http][warnings]") {
  AdmissionFixture f("  namespaces: [payments]\n  enforcement: warn\n");
  json s = makeSidecar("shop", "api");
  s["spec"]["ingress"][0]["tls"]["serverCertificate"] = "/" + std::string(400, 'x');
  json out = f.postOk("/validate", review("admission.k8s.io/v1", "w", s));
  const json& r = out["response"];
  CHECK(r["allowed"] == true);
  REQUIRE(r["warnings"].size() == 1);
  CHECK(r["warnings"][0].get<std::string>().rfind("[namespace-not-allowed] metadata.namespace: ",
                                                  0) == 0);
  for (const auto& w : r["warnings"]) CHECK(w.get<std::string>().size() <= 256);
}

TEST_CASE("kinds hybrid-guard does not judge are admitted untouched", "[http]") {
  AdmissionFixture f(kPolicy);
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "c"}, {"namespace", "payments"}}}};
  for (const char* path : {"/validate", "/mutate"}) {
    json out = f.postOk(path, review("admission.k8s.io/v1", "c", cm));
    CHECK(out["response"]["allowed"] == true);
    CHECK_FALSE(out["response"].contains("patch"));
    CHECK_FALSE(out["response"].contains("warnings"));
  }
}

TEST_CASE("bad AdmissionReviews are 400 with a JSON error, never an admit", "[http][bad-input]") {
  AdmissionFixture f(kPolicy);
  json good = review("admission.k8s.io/v1", "x", makeSidecar("payments", "api"));
  struct Case {
    std::string name;
    std::string body;
    std::string error;
  };
  json noUid = good;
  noUid["request"].erase("uid");
  json wrongVersion = good;
  wrongVersion["apiVersion"] = "admission.k8s.io/v2";
  json wrongKind = good;
  wrongKind["kind"] = "ConfigMap";
  json noRequest = good;
  noRequest.erase("request");
  json badOperation = good;
  badOperation["request"]["operation"] = "PATCH";
  json objectList = good;
  objectList["request"]["object"] = json::array();
  json groupsString = good;
  groupsString["request"]["userInfo"]["groups"] = "dev";
  for (const auto& c : std::vector<Case>{
           {"malformed JSON", "{\"apiVersion\": ", ""},
           {"not an object", "[1, 2]", ""},
           {"missing uid", noUid.dump(), "request.uid is missing or not a non-empty string"},
           {"wrong apiVersion", wrongVersion.dump(),
            "apiVersion \"admission.k8s.io/v2\" is not admission.k8s.io/v1 or "
            "admission.k8s.io/v1beta1"},
           {"wrong kind", wrongKind.dump(), "kind must be AdmissionReview"},
           {"missing request", noRequest.dump(), "request is missing"},
           {"unknown operation", badOperation.dump(),
            "request.operation \"PATCH\" is not CREATE, UPDATE, DELETE or CONNECT"},
           {"object of the wrong type", objectList.dump(), "request.object must be an object"},
           {"groups of the wrong type", groupsString.dump(),
            "request.userInfo.groups must be a list of strings"}}) {
    INFO(c.name);
    auto reply = postJson(f.server.port(), f.pki.authority.certificatePem, "/validate", c.body);
    REQUIRE(reply.has_value());
    CHECK(reply->status == 400);
    json body = json::parse(reply->body);
    REQUIRE(body.contains("error"));
    if (!c.error.empty()) CHECK(body["error"] == c.error);
    CHECK_FALSE(body.contains("response"));
  }
  // And the server is still answering correctly.
  CHECK(f.postOk("/validate", good)["response"]["allowed"] == true);
}

TEST_CASE("metrics count requests, decisions and violations", "[http][metrics]") {
  AdmissionFixture f(kPolicy);
  f.postOk("/validate", review("admission.k8s.io/v1", "1", makeSidecar("shop", "api")));
  f.postOk("/validate", review("admission.k8s.io/v1", "2", makeSidecar("payments", "api")));
  postJson(f.server.port(), f.pki.authority.certificatePem, "/validate", "{");
  std::string text = f.metrics.render();
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  CHECK(
      has("hybrid_guard_admission_requests_total{endpoint=\"validate\",kind=\"Sidecar\",operation="
          "\"CREATE\",decision=\"deny\"} 1"));
  CHECK(
      has("hybrid_guard_admission_requests_total{endpoint=\"validate\",kind=\"Sidecar\",operation="
          "\"CREATE\",decision=\"allow\"} 1"));
  CHECK(
      has("hybrid_guard_admission_requests_total{endpoint=\"validate\",kind=\"unknown\",operation="
          "\"unknown\",decision=\"error\"} 1"));
  CHECK(has("hybrid_guard_rule_violations_total{rule=\"namespace-not-allowed\"} 1"));
  CHECK(has("hybrid_guard_rule_violations_total{rule=\"tls-mode\"} 0"));
  CHECK(has("hybrid_guard_hybrid_workloads{namespace=\"payments\"} 1"));
  CHECK(has("hybrid_guard_admission_duration_seconds_count{endpoint=\"validate\"} 3"));
  CHECK(has("hybrid_guard_policy_reloads_total{result=\"failure\"} 0"));
  CHECK(has("hybrid_guard_certificate_reloads_total{result=\"success\"} 0"));
  CHECK(text.find("# TYPE hybrid_guard_admission_duration_seconds histogram") != std::string::npos);
  CHECK(text.find("# TYPE hybrid_guard_certificate_expiry_timestamp_seconds gauge") !=
        std::string::npos);
}

TEST_CASE("the decision log line is one JSON object with the fields of DESIGN §6", "[http][log]") {
  DecisionRecord r;
  r.uid = "u";
  r.endpoint = "validate";
  r.kind = "Sidecar";
  r.namespace_ = "ns";
  r.name = "n";
  r.operation = "CREATE";
  r.user = "alice";
  r.decision = "deny";
  r.rules = {"tls-mode"};
  r.latencyMicros = 42;
  json line = json::parse(formatDecisionLog(r));
  CHECK(line["uid"] == "u");
  CHECK(line["endpoint"] == "validate");
  CHECK(line["kind"] == "Sidecar");
  CHECK(line["namespace"] == "ns");
  CHECK(line["name"] == "n");
  CHECK(line["operation"] == "CREATE");
  CHECK(line["user"] == "alice");
  CHECK(line["decision"] == "deny");
  CHECK(line["rules"] == json{"tls-mode"});
  CHECK(line["latency_us"] == 42);
  CHECK(line["time"].get<std::string>().size() == 24);
}

TEST_CASE("a dry-run CREATE is evaluated but never counted", "[http][state][dry-run]") {
  AdmissionFixture f(kPolicy);
  json out = f.postOk("/validate", review("admission.k8s.io/v1", "dry",
                                          makeSidecar("payments", "api"), "CREATE", nullptr, true));
  CHECK(out["response"]["allowed"] == true);
  CHECK(f.state.total() == 0);
  json denied = f.postOk("/validate", review("admission.k8s.io/v1", "dry2",
                                             makeSidecar("shop", "api"), "CREATE", nullptr, true));
  CHECK(denied["response"]["allowed"] == false);
}
