// DESIGN §6 "bad input never crashes or hangs the server and never produces allowed: true by
// accident": a table of hostile requests over real TLS against the server, the admission service
// and the engine, each with the exact answer it must get; after each one the server still answers
// a valid request correctly.
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "test/webhook/admission_fixture.h"
#include "test/webhook/https_server_fixture.h"

using namespace hybrid_guard;
using namespace hybrid_guard::webhook;
using namespace hybrid_guard::webhook::testing;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const char* kPolicy =
    "  namespaces: [{name: payments, maxWorkloads: 1}]\n"
    "  tls: {certificatePaths: [/etc/istio/tls-certs/]}\n";

// A dry-run review of a Sidecar that the policy admits: dry run, so that admitting it never
// changes the state between cases.
json goodReview(const std::string& uid) {
  return review("admission.k8s.io/v1", uid, makeSidecar("payments", "api"), "CREATE", nullptr,
                true);
}

json goodPod() {
  json pod = makePod("payments");
  pod["metadata"]["name"] = "api-0";
  return pod;
}

std::string post(std::string_view body, std::string_view target = "/validate",
                 std::string_view contentType = "application/json") {
  return TlsClient::request("POST", target, jsonHeaders(body.size(), contentType), body);
}

std::string postReview(const std::function<void(json&)>& change) {
  json r = goodReview("bad");
  change(r);
  return post(r.dump());
}

std::string postSidecar(const std::function<void(json&)>& change) {
  return postReview([&](json& r) { change(r["request"]["object"]); });
}

std::string postPod(const std::function<void(json&)>& change) {
  json pod = goodPod();
  change(pod);
  return post(review("admission.k8s.io/v1", "bad", pod, "CREATE", nullptr, true).dump());
}

std::string nested(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[') +
         std::string(static_cast<std::size_t>(depth), ']');
}

struct Case {
  std::string name;
  std::string request;  // the bytes sent
  int status;
  // Not 200: the {"error": ...} text, exactly, or its beginning when it ends in "…".
  std::string error;
  // 200: the lines of the denial ("[rule] path: message"), exactly and in order.
  std::vector<std::string> violations = {};
};

bool matches(const std::string& actual, const std::string& expected) {
  const std::string ellipsis = "…";
  if (expected.size() >= ellipsis.size() &&
      expected.compare(expected.size() - ellipsis.size(), ellipsis.size(), ellipsis) == 0) {
    return actual.rfind(expected.substr(0, expected.size() - ellipsis.size()), 0) == 0;
  }
  return actual == expected;
}

std::vector<std::string> denialLines(const std::string& message) {
  std::vector<std::string> lines;
  std::size_t start = message.find('\n');  // after the "hybrid-guard denied ..." summary
  while (start != std::string::npos) {
    std::size_t end = message.find('\n', start + 1);
    lines.push_back(message.substr(start + 1, end == std::string::npos ? end : end - start - 1));
    start = end;
  }
  return lines;
}

const std::string kMalformed = "malformed JSON: ";
const std::string kNotAnObject = "malformed JSON: expected an AdmissionReview object";
const std::string kBadUid = "request.uid is missing or not a non-empty string";

std::vector<Case> matrix() {
  const std::string hugeName(1 << 20, 'x');
  std::vector<Case> cases = {
      // The HTTP envelope, answered by the server before the handler.
      {"unknown path", post("{}", "/admit"), 404,
       "no such endpoint: use POST /validate or /mutate"},
      {"path with a query is still that path", post("[]", "/validate?timeout=3s"), 400,
       kNotAnObject},
      {"GET", TlsClient::request("GET", "/validate", "", ""), 405,
       "method GET not allowed: use POST"},
      {"PUT with a body", TlsClient::request("PUT", "/mutate", jsonHeaders(2), "{}"), 405,
       "method PUT not allowed: use POST"},
      {"Content-Type text/plain", post("{}", "/validate", "text/plain"), 415,
       "Content-Type must be application/json"},
      {"no Content-Type", TlsClient::request("POST", "/validate", "Content-Length: 2\r\n", "{}"),
       415, "Content-Type must be application/json"},
      {"Content-Type application/jsonx", post("{}", "/validate", "application/jsonx"), 415,
       "Content-Type must be application/json"},
      {"Content-Encoding gzip",
       TlsClient::request("POST", "/validate", jsonHeaders(2) + "Content-Encoding: gzip\r\n", "{}"),
       415, "Content-Encoding gzip is not supported"},
      {"neither Content-Length nor chunked",
       TlsClient::request("POST", "/validate", "Content-Type: application/json\r\n", "{}"), 411,
       "Content-Length required"},
      {"Content-Length not a number",
       TlsClient::request("POST", "/validate",
                          "Content-Type: application/json\r\nContent-Length: 2x\r\n", "{}"),
       400, "invalid Content-Length"},
      {"Content-Length negative",
       TlsClient::request("POST", "/validate",
                          "Content-Type: application/json\r\nContent-Length: -2\r\n", "{}"),
       400, "invalid Content-Length"},
      {"Content-Length twice, different",
       TlsClient::request("POST", "/validate", jsonHeaders(2) + "Content-Length: 3\r\n", "{} "),
       400, "invalid Content-Length"},
      {"Content-Length overflowing 64 bits",
       TlsClient::request("POST", "/validate",
                          "Content-Type: application/json\r\nContent-Length: "
                          "99999999999999999999999\r\n",
                          "{}"),
       400, "invalid Content-Length"},
      {"Content-Length and chunked",
       TlsClient::request("POST", "/validate", jsonHeaders(2) + "Transfer-Encoding: chunked\r\n",
                          "2\r\n{}\r\n0\r\n\r\n"),
       400, "both Content-Length and Transfer-Encoding given"},
      {"Transfer-Encoding gzip",
       TlsClient::request("POST", "/validate",
                          "Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n", "{}"),
       400, "unsupported Transfer-Encoding"},
      {"malformed chunk size",
       TlsClient::request("POST", "/validate",
                          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
                          "zz\r\n{}\r\n0\r\n\r\n"),
       400, "malformed chunked body"},
      {"body declared over the 8 MiB limit (answered before it is sent)",
       TlsClient::request("POST", "/validate",
                          "Content-Type: application/json\r\nContent-Length: 8388609\r\n", ""),
       413, "request body of 8388609 bytes exceeds the limit of 8388608 bytes"},
      {"chunk declared over the limit",
       TlsClient::request("POST", "/validate",
                          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
                          "800001\r\n{"),
       413, "request body exceeds the limit of 8388608 bytes"},
      {"body shorter than its Content-Length (truncated)",
       TlsClient::request("POST", "/validate", jsonHeaders(4096), goodReview("t").dump()), 408,
       "the request did not arrive within 1000 ms"},
      {"Expect other than 100-continue",
       TlsClient::request("POST", "/validate", jsonHeaders(2) + "Expect: 200-ok\r\n", "{}"), 417,
       "unsupported Expect: 200-ok"},
      {"HTTP/2.0 request line", "POST /validate HTTP/2.0\r\n" + jsonHeaders(2) + "\r\n{}", 505,
       "HTTP version not supported: use HTTP/1.1"},
      {"garbage request line", "\x16\x03\x01 hello\r\n\r\n", 400, "malformed request line"},
      {"header without colon",
       TlsClient::request("POST", "/validate", jsonHeaders(2) + "X-Bad header\r\n", "{}"), 400,
       "malformed header field"},
      {"bare LF line ends", "POST /validate HTTP/1.1\nContent-Length: 2\n\n{}", 400,
       "line without CRLF"},
      {"request line over 8 KiB", post("{}", "/validate?" + std::string(9000, 'a')), 414,
       "request line too long"},
      {"101 header fields",
       [] {
         std::string headers = jsonHeaders(2);
         for (int i = 0; i < 101; ++i) headers += "X-" + std::to_string(i) + ": y\r\n";
         return TlsClient::request("POST", "/validate", headers, "{}");
       }(),
       431, "too many header fields"},

      // The body, decoded by the admission service.
      {"empty body", post(""), 400, "empty body: expected an AdmissionReview"},
      {"only whitespace", post(" \r\n\t"), 400, kNotAnObject},
      {"truncated JSON", post(goodReview("t").dump().substr(0, 80)), 400, kMalformed + "…"},
      {"Content-Length shorter than the JSON",
       TlsClient::request("POST", "/validate", jsonHeaders(10), goodReview("t").dump()), 400,
       kMalformed + "…"},
      {"a JSON array", post("[{\"kind\":\"AdmissionReview\"}]"), 400, kNotAnObject},
      {"a JSON string", post("\"AdmissionReview\""), 400, kNotAnObject},
      {"YAML instead of JSON", post("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n"),
       400, kNotAnObject},
      {"a byte-order mark before the JSON", post("\xEF\xBB\xBF" + goodReview("t").dump()), 400,
       kNotAnObject},
      {"two JSON objects", post(goodReview("t").dump() + goodReview("u").dump()), 400,
       kMalformed + "…"},
      {"trailing garbage", post(goodReview("t").dump() + " x"), 400, kMalformed + "…"},
      {"duplicate key at the top", post(R"({"request":{},"request":{}})"), 400,
       kMalformed + "duplicate key \"request\""},
      {"duplicate key in the object (which one would the API server store?)",
       post(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d",)"
            R"("object":{"spec":{},"spec":{"ingress":[{"tls":{}}]}}}})"),
       400, kMalformed + "duplicate key \"spec\""},
      {"nesting 100000 deep", post(R"({"request":)" + nested(100000) + "}"), 400,
       kMalformed + "nesting deeper than 200 levels"},
      {"invalid UTF-8 in a string", post("{\"apiVersion\":\"admission.k8s.io/v1\xff\"}"), 400,
       kMalformed + "invalid UTF-8 (byte 0xFF); expected UTF-8 text"},
      {"a NUL byte", post(std::string("{\"apiVersion\":\"a\0b\"}", 20)), 400,
       kMalformed + "control character 0x00 in the input; expected UTF-8 text"},
      {"a lone UTF-16 surrogate escape", post(R"({"apiVersion":"\ud800"})"), 400, kMalformed + "…"},
      {"a number too large for any integer",
       post(R"({"apiVersion":1e999999,"kind":"AdmissionReview"})"), 400, kMalformed + "…"},

      // The envelope: every field the decoder reads, missing or of the wrong type.
      {"apiVersion missing", postReview([](json& r) { r.erase("apiVersion"); }), 400,
       "apiVersion is missing"},
      {"apiVersion a number", postReview([](json& r) { r["apiVersion"] = 1; }), 400,
       "apiVersion is missing"},
      {"apiVersion admission.k8s.io/v2",
       postReview([](json& r) { r["apiVersion"] = "admission.k8s.io/v2"; }), 400,
       "apiVersion \"admission.k8s.io/v2\" is not admission.k8s.io/v1 or "
       "admission.k8s.io/v1beta1"},
      {"kind ConfigMap", postReview([](json& r) { r["kind"] = "ConfigMap"; }), 400,
       "kind must be AdmissionReview"},
      {"kind a list", postReview([](json& r) { r["kind"] = json::array({"AdmissionReview"}); }),
       400, "kind must be AdmissionReview"},
      {"request missing", postReview([](json& r) { r.erase("request"); }), 400,
       "request is missing"},
      {"request null", postReview([](json& r) { r["request"] = nullptr; }), 400,
       "request is missing"},
      {"request a string", postReview([](json& r) { r["request"] = "{}"; }), 400,
       "request must be an object"},
      {"uid missing", postReview([](json& r) { r["request"].erase("uid"); }), 400, kBadUid},
      {"uid empty", postReview([](json& r) { r["request"]["uid"] = ""; }), 400, kBadUid},
      {"uid a number", postReview([](json& r) { r["request"]["uid"] = 42; }), 400, kBadUid},
      {"request.kind a string", postReview([](json& r) { r["request"]["kind"] = "Sidecar"; }), 400,
       "request.kind must be an object {group, version, kind}"},
      {"request.kind.kind missing", postReview([](json& r) { r["request"]["kind"].erase("kind"); }),
       400, "request.kind.kind is missing"},
      {"request.kind.group a number",
       postReview([](json& r) { r["request"]["kind"]["group"] = 7; }), 400,
       "request.kind.group must be a string"},
      {"request.namespace a list",
       postReview([](json& r) { r["request"]["namespace"] = json::array({"payments"}); }), 400,
       "request.namespace must be a string"},
      {"request.name a map", postReview([](json& r) { r["request"]["name"] = json::object(); }),
       400, "request.name must be a string"},
      {"operation missing", postReview([](json& r) { r["request"].erase("operation"); }), 400,
       "request.operation is missing"},
      {"operation in lower case", postReview([](json& r) { r["request"]["operation"] = "create"; }),
       400, "request.operation \"create\" is not CREATE, UPDATE, DELETE or CONNECT"},
      {"userInfo a string", postReview([](json& r) { r["request"]["userInfo"] = "alice"; }), 400,
       "request.userInfo must be an object"},
      {"username a number", postReview([](json& r) { r["request"]["userInfo"]["username"] = 1; }),
       400, "request.userInfo.username must be a string"},
      {"groups with a number", postReview([](json& r) {
         r["request"]["userInfo"]["groups"] = json::array({"dev", 1});
       }),
       400, "request.userInfo.groups must be a list of strings"},
      {"dryRun a string", postReview([](json& r) { r["request"]["dryRun"] = "true"; }), 400,
       "request.dryRun must be true or false"},
      {"object a list", postReview([](json& r) { r["request"]["object"] = json::array(); }), 400,
       "request.object must be an object"},
      {"object missing on CREATE", postReview([](json& r) { r["request"].erase("object"); }), 400,
       "request.object is missing for CREATE"},
      {"oldObject a string", postReview([](json& r) { r["request"]["oldObject"] = "old"; }), 400,
       "request.oldObject must be an object"},

      // The object: well-formed JSON of the wrong shape is an invalid-object denial, never an
      // admit and never a crash.
      {"Sidecar metadata a list",
       postSidecar([](json& s) { s["metadata"] = json::array(); }),
       200,
       "",
       {"[invalid-object] metadata: must be a map, not a list"}},
      {"Sidecar spec.ingress a map",
       postSidecar([](json& s) {
         s["spec"]["ingress"] = {{"port", 8443}};
       }),
       200,
       "",
       {"[invalid-object] spec.ingress: must be a list, not a map"}},
      {"Sidecar ingress entry a string",
       postSidecar([](json& s) { s["spec"]["ingress"].push_back("tls"); }),
       200,
       "",
       {"[invalid-object] spec.ingress[1]: an ingress listener must be a map, not a string"}},
      {"port.number a string",
       postSidecar([](json& s) { s["spec"]["ingress"][0]["port"]["number"] = "8443"; }),
       200,
       "",
       {"[invalid-object] spec.ingress[0].port.number: must be an integer, not a string"}},
      {"port.number a decimal",
       postSidecar([](json& s) { s["spec"]["ingress"][0]["port"]["number"] = 8443.5; }),
       200,
       "",
       {"[invalid-object] spec.ingress[0].port.number: must be an integer, not a decimal number"}},
      {"port.protocol a boolean",
       postSidecar([](json& s) { s["spec"]["ingress"][0]["port"]["protocol"] = true; }),
       200,
       "",
       {"[invalid-object] spec.ingress[0].port.protocol: must be a string, not a boolean"}},
      {"tls a string",
       postSidecar([](json& s) { s["spec"]["ingress"][0]["tls"] = "SIMPLE"; }),
       200,
       "",
       {"[invalid-object] spec.ingress[0].tls: must be a map, not a string"}},
      {"tls.mode a number",
       postSidecar([](json& s) { s["spec"]["ingress"][0]["tls"]["mode"] = 1; }),
       200,
       "",
       {"[invalid-object] spec.ingress[0].tls.mode: must be a string, not an integer"}},
      {"tls.httpsRedirect a string",
       postSidecar([](json& s) { s["spec"]["ingress"][0]["tls"]["httpsRedirect"] = "yes"; }),
       200,
       "",
       {"[invalid-object] spec.ingress[0].tls.httpsRedirect: must be true or false, not a "
        "string"}},
      {"tls.subjectAltNames with a map",
       postSidecar([](json& s) {
         s["spec"]["ingress"][0]["tls"]["subjectAltNames"] = json::array({json::object()});
       }),
       200,
       "",
       {"[invalid-object] spec.ingress[0].tls.subjectAltNames[0]: must be a string, not a map"}},
      {"workloadSelector.labels with a number",
       postSidecar([](json& s) { s["spec"]["workloadSelector"]["labels"]["app"] = 1; }),
       200,
       "",
       {"[invalid-object] spec.workloadSelector.labels.app: must be a string, not an integer"}},
      {"Pod containers a map",
       postPod([](json& p) { p["spec"]["containers"] = json::object(); }),
       200,
       "",
       {"[invalid-object] spec.containers: must be a list, not a map"}},
      {"Pod env entry a string",
       postPod([](json& p) { p["spec"]["containers"][1]["env"] = json::array({"A=b"}); }),
       200,
       "",
       {"[invalid-object] spec.containers[1].env[0]: an env entry must be a map, not a string"}},
      {"Pod hybrid flag value a boolean",
       postPod([](json& p) {
         p["spec"]["containers"][1]["env"].push_back(
             {{"name", "SIDECAR_IN_HYBRID_MODE"}, {"value", true}});
       }),
       200,
       "",
       {"[invalid-object] spec.containers[1].env[1].value: must be a string, not a boolean"}},

      // Large and unusual but well-formed values are judged like any other.
      {"a 1 MiB certificate path",
       postSidecar(
           [&](json& s) { s["spec"]["ingress"][0]["tls"]["serverCertificate"] = "/" + hugeName; }),
       200,
       "",
       {"[tls-certificate-path] spec.ingress[0].tls.serverCertificate: …"}},
      {"a namespace in Unicode",
       postSidecar([](json& s) { s["metadata"]["namespace"] = "paymënts"; }),
       200,
       "",
       {"[namespace-not-allowed] metadata.namespace: hybrid mode is not allowed in namespace "
        "\"paymënts\"; ask the platform team to add it to the policy's spec.namespaces"}},
      {"a namespace spelled with \\u escapes and a zero-width space",
       post(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{)"
            R"("uid":"bad","kind":{"group":"networking.istio.io","version":"v1","kind":"Sidecar"},)"
            R"("operation":"CREATE","dryRun":true,"object":{"apiVersion":"networking.istio.io/v1",)"
            R"("kind":"Sidecar","metadata":{"name":"api","namespace":"pay\u200bments"},)"
            R"("spec":{"workloadSelector":{"labels":{"app":"api"}},"ingress":[{"port":)"
            R"({"number":8443,"protocol":"HTTPS"},"tls":{"mode":"SIMPLE","serverCertificate":)"
            R"("/etc/istio/tls-certs/tls.crt","privateKey":"/etc/istio/tls-certs/tls.key"}}]}}}})"),
       200,
       "",
       {"[namespace-not-allowed] metadata.namespace: hybrid mode is not allowed in namespace "
        "\"pay\u200bments\"; ask the platform team to add it to the policy's "
        "spec.namespaces"}},
  };
  return cases;
}

}  // namespace

TEST_CASE("bad-input matrix: every hostile request gets its exact answer", "[http][bad-input]") {
  HttpsServerOptions options;
  options.requestTimeout = 1000ms;  // the truncated body is cut after 1 s
  AdmissionFixture f(kPolicy, options);
  const std::vector<Case> cases = matrix();
  REQUIRE(cases.size() >= 40);

  int index = 0;
  for (const Case& c : cases) {
    INFO("case " << index << ": " << c.name);
    ++index;
    TlsClient client(f.server.port(), f.pki.authority.certificatePem);
    REQUIRE(client.handshake());
    REQUIRE(client.send(c.request));
    auto reply = client.readReply();
    REQUIRE(reply.has_value());
    CHECK(reply->status == c.status);
    CHECK(reply->header("content-type") == "application/json");
    json body = json::parse(reply->body, nullptr, false);
    REQUIRE(body.is_object());
    if (c.status != 200) {
      CHECK_FALSE(body.contains("response"));
      REQUIRE(body.contains("error"));
      std::string error = body["error"].get<std::string>();
      INFO("error: " << error.substr(0, 300));
      CHECK(matches(error, c.error));
    } else {
      const json& response = body["response"];
      CHECK(response["uid"] == "bad");
      CHECK(response["allowed"] == false);
      CHECK(response["status"]["code"] == 403);
      std::vector<std::string> lines = denialLines(response["status"]["message"]);
      REQUIRE(lines.size() == c.violations.size());
      for (std::size_t i = 0; i < lines.size(); ++i) {
        INFO("line: " << lines[i].substr(0, 300));
        CHECK(matches(lines[i], c.violations[i]));
        CHECK(lines[i].size() <= 1024);  // a megabyte value is not echoed back whole
      }
    }

    // The server is still up and answers a valid request, on a new connection, correctly.
    std::string uid = "good-" + std::to_string(index);
    json good = f.postOk(index % 2 == 0 ? "/validate" : "/mutate", goodReview(uid));
    CHECK(good["response"]["uid"] == uid);
    CHECK(good["response"]["allowed"] == true);
  }
  CHECK(f.state.total() == 0);  // dry runs all: nothing was ever counted
}
