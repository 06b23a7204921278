#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "policy/admission.h"
#include "policy/decision.h"
#include "policy/expected.h"

namespace hybrid_guard::webhook {

// An AdmissionReview (admission.k8s.io/v1 or v1beta1) with its request read. The review owns the
// JSON; `request` borrows the objects inside it, so a DecodedReview is not copyable.
struct DecodedReview {
  nlohmann::json review;
  std::string apiVersion;
  policy::AdmissionRequest request;

  DecodedReview() = default;
  ~DecodedReview();
  DecodedReview(const DecodedReview&) = delete;
  DecodedReview& operator=(const DecodedReview&) = delete;
  DecodedReview(DecodedReview&&) = delete;
};

struct CodecError {
  std::string message;
};

bool isAdmissionReview(const nlohmann::json& value);

// Checks the envelope and every field the engine reads; a wrong one is an error naming it.
[[nodiscard]] std::optional<CodecError> decodeAdmissionReview(nlohmann::json review,
                                                              DecodedReview& out);
[[nodiscard]] std::optional<CodecError> decodeAdmissionReview(std::string_view body,
                                                              DecodedReview& out);

// The response review: same apiVersion, response.uid = request.uid, status 403 with every
// violation when denied, warnings, and a base64 JSONPatch only when there is one.
nlohmann::json encodeResponse(const DecodedReview& review, const policy::Decision& decision,
                              bool includePatch);

// The same response, as the bytes `encodeResponse(...).dump(-1, ' ', false, replace)` gives,
// written straight into one string: no JSON tree is built for the answer of every request.
std::string encodeResponseBody(const DecodedReview& review, const policy::Decision& decision,
                               bool includePatch);

std::string base64Encode(std::string_view data);

}  // namespace hybrid_guard::webhook
