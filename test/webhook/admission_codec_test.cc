// The response body written straight into a string is byte for byte the JSON tree's dump.
#include <catch2/catch.hpp>

#include "webhook/admission_codec.h"

using namespace hybrid_guard;
using namespace hybrid_guard::webhook;
using nlohmann::json;

namespace {

std::string treeDump(const DecodedReview& review, const policy::Decision& decision, bool patch) {
  return encodeResponse(review, decision, patch)
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

TEST_CASE("encodeResponseBody writes what encodeResponse's tree dumps", "[review][codec]") {
  DecodedReview review;
  review.apiVersion = "admission.k8s.io/v1";
  review.request.uid = "705ab4f5-6393-11e8-b7cc-42010a800002";
  policy::Decision decision;

  SECTION("an admit, without and with a patch") {
    for (bool patch : {false, true}) {
      CHECK(encodeResponseBody(review, decision, patch) == treeDump(review, decision, patch));
    }
    decision.patch = json::array({{{"op", "add"},
                                   {"path", "/metadata/annotations/a~1b"},
                                   {"value", "{\"proxyMetadata\":{}}"}}});
    for (bool patch : {false, true}) {
      CHECK(encodeResponseBody(review, decision, patch) == treeDump(review, decision, patch));
    }
  }
  SECTION("a denial, its message escaped") {
    review.apiVersion = "admission.k8s.io/v1beta1";
    decision.allowed = false;
    decision.namespace_ = "shop";
    decision.name = "caf\xC3\xA9-\xF0\x9F\x94\x92";
    decision.violations = {
        {"tls-mode", "spec.ingress[0].tls.mode", "unknown TLS mode \"x\\y\"; use SIMPLE"},
        {"invalid-object", "metadata.annotations[\"a\"]",
         std::string("tab\there, cr\r, ff\f, bs\b, nul ") + '\0' + ", esc \x1b, del \x7f"}};
    decision.patch = json::array({{{"op", "add"}, {"path", "/x"}, {"value", 1}}});
    for (bool patch : {false, true}) {
      CHECK(encodeResponseBody(review, decision, patch) == treeDump(review, decision, patch));
    }
  }
  SECTION("warnings, in warn mode and from the rules") {
    decision.enforcement = policy::Enforcement::Warn;
    decision.violations = {{"port-not-allowed", "spec.ingress[0].port.number", "port 15001"}};
    decision.warnings = {{"selector-overlap", "spec.workloadSelector",
                          "hybrid Sidecar \"other\" can select the same pods"},
                         {"certificate-not-mounted", "x", std::string(300, 'w')}};
    CHECK(encodeResponseBody(review, decision, true) == treeDump(review, decision, true));
  }
  SECTION("text that is not UTF-8 is replaced as nlohmann replaces it") {
    review.request.uid = "uid-\xE9-\xC3";
    decision.allowed = false;
    decision.violations = {{"invalid-object", "metadata.name", "bad \xFF byte"}};
    CHECK(encodeResponseBody(review, decision, false) == treeDump(review, decision, false));
    // Lead bytes above 0xF4 followed by what would be continuation bytes start no sequence.
    review.request.uid = "uid";
    decision.violations = {
        {"invalid-object", "metadata.name", "bad \xF8\x80\x80 and \xFF\x80\x80"}};
    std::string body = encodeResponseBody(review, decision, false);
    CHECK(body == treeDump(review, decision, false));
    CHECK(body.find('\xF8') == std::string::npos);
  }
}
