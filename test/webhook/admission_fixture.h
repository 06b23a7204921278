#pragma once

// The HTTPS server, the admission service and the engine together on port 0 with a fresh CA, and
// AdmissionReviews as the API server sends them.
#include <catch2/catch.hpp>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "test/support/engine_helpers.h"
#include "test/webhook/webhook_test_support.h"
#include "webhook/admission_codec.h"
#include "webhook/admission_service.h"
#include "webhook/https_server.h"

namespace hybrid_guard::webhook::testing {

using nlohmann::json;

inline std::string base64Decode(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    if (c == '=') break;
    auto pos = chars.find(c);
    if (pos == std::string::npos) throw std::runtime_error("bad base64");
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

inline json makeSidecar(const std::string& ns, const std::string& name) {
  json s = test::yaml(R"(
apiVersion: networking.istio.io/v1
kind: Sidecar
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - port: {number: 8443, protocol: HTTPS, name: external}
    tls: {mode: SIMPLE, serverCertificate: /etc/istio/tls-certs/tls.crt, privateKey: /etc/istio/tls-certs/tls.key}
)");
  s["metadata"] = {{"name", name}, {"namespace", ns}};
  return s;
}

inline json makePod(const std::string& ns) {
  json p = test::yaml(R"(
apiVersion: v1
kind: Pod
metadata:
  generateName: api-7d9-
  labels: {app: api}
spec:
  containers:
  - {name: app, image: app}
  - name: istio-proxy
    image: proxyv2
    env: [{name: A, value: b}]
)");
  p["metadata"]["namespace"] = ns;
  return p;
}

inline json review(const std::string& apiVersion, const std::string& uid, const json& object,
                   const std::string& operation = "CREATE", const json& oldObject = nullptr,
                   bool dryRun = false) {
  const json& source = object.is_null() ? oldObject : object;
  std::string av = source["apiVersion"];
  auto slash = av.find('/');
  json kind = {{"group", slash == std::string::npos ? "" : av.substr(0, slash)},
               {"version", slash == std::string::npos ? av : av.substr(slash + 1)},
               {"kind", source["kind"]}};
  json request = {
      {"uid", uid},
      {"kind", kind},
      {"resource", {{"group", kind["group"]}, {"version", kind["version"]}, {"resource", "x"}}},
      {"namespace", source["metadata"]["namespace"]},
      {"operation", operation},
      {"userInfo", {{"username", "alice"}, {"groups", {"dev"}}}},
      {"dryRun", dryRun}};
  if (source["metadata"].contains("name")) request["name"] = source["metadata"]["name"];
  if (!object.is_null()) request["object"] = object;
  if (!oldObject.is_null()) request["oldObject"] = oldObject;
  return {{"apiVersion", apiVersion}, {"kind", "AdmissionReview"}, {"request", request}};
}

// A server on port 0 with a real certificate, the engine and a fresh local state.
struct AdmissionFixture {
  TestPki pki = makeTestPki();
  std::shared_ptr<CertificateStore> certs = std::make_shared<CertificateStore>();
  PolicyHolder policy;
  StateStore state;
  ServerMetrics metrics;
  std::vector<DecisionRecord> logged;
  std::mutex logMutex;
  AdmissionService service;
  HttpsServer server;

  explicit AdmissionFixture(const std::string& policySpec, HttpsServerOptions options = {})
      : policy(test::policyFrom(policySpec)),
        metrics(*policy.get()),
        service(policy, state, metrics,
                [this](const DecisionRecord& r) {
                  std::lock_guard lock(logMutex);
                  logged.push_back(r);
                }),
        server(
            certs, [this](Endpoint e, std::string_view body) { return service.handle(e, body); },
            options) {
    REQUIRE(certs->loadPem(pki.serving.certificatePem, pki.serving.privateKeyPem).ok());
    REQUIRE(server.start("127.0.0.1", 0).ok());
  }
  ~AdmissionFixture() { server.stop(); }

  HttpReply post(const std::string& path, const json& body) {
    auto reply = postJson(server.port(), pki.authority.certificatePem, path, body.dump());
    REQUIRE(reply.has_value());
    return *reply;
  }
  json postOk(const std::string& path, const json& body) {
    auto reply = post(path, body);
    REQUIRE(reply.status == 200);
    CHECK(reply.header("content-type").rfind("application/json", 0) == 0);
    return json::parse(reply.body);
  }
};

}  // namespace hybrid_guard::webhook::testing
