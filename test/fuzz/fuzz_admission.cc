// libFuzzer target: an HTTP body as the webhook receives it, through the AdmissionReview decoder,
// the engine (validate and mutate) and the response encoder. A patch must apply to its object.
// The webhook builds only the parts of a review the engine reads: the body is also read whole, as
// the CLI reads it, and both must be refused alike or give the same answers.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/document.h"
#include "test/fuzz/fuzz_policy.h"
#include "webhook/admission_codec.h"

using namespace hybrid_guard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto policy = fuzz::fuzzPolicy();
  static const policy::State state = fuzz::fuzzState();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  webhook::DecodedReview review;
  auto error = webhook::decodeAdmissionReview(body, review);
  webhook::DecodedReview whole;
  bool wholeRead = false;
  {
    policy::ParseLimits limits;
    limits.lineDepth = -1;
    limits.maxBytes = body.size();
    auto docs = policy::parseDocuments(body, limits);
    if (docs && docs->size() == 1) {
      wholeRead = !webhook::decodeAdmissionReview(std::move(docs->front().value), whole);
    }
  }
  // A body the pruned reader refuses is refused whole too (the converse does not hold: a body
  // that is not JSON at all may still read as YAML whole).
  size_t first = body.find_first_not_of(" \t\r\n");
  bool json = first != std::string_view::npos && body[first] == '{';
  if (error && wholeRead && json) std::abort();
  if (error) return 0;
  if (!wholeRead) std::abort();
  for (auto phase : {policy::Phase::Validate, policy::Phase::Mutate}) {
    policy::Decision decision = policy::decide(review.request, *policy, state, phase);
    bool mutate = phase == policy::Phase::Mutate;
    policy::Decision wholeDecision = policy::decide(whole.request, *policy, state, phase);
    if (webhook::encodeResponseBody(review, decision, mutate) !=
        webhook::encodeResponseBody(whole, wholeDecision, mutate)) {
      std::abort();
    }
    auto response = webhook::encodeResponse(review, decision, mutate);
    (void)response.dump();
    if (!decision.patch.empty()) {
      // A patch that does not apply to the object it was made for would fail the pod's creation.
      try {
        (void)review.request.object->patch(decision.patch);
      } catch (const std::exception&) {
        std::abort();
      }
    }
  }
  return 0;
}
