// libFuzzer target: an HTTP body as the webhook receives it, through the AdmissionReview decoder,
// the engine (validate and mutate) and the response encoder. A patch must apply to its object.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "test/fuzz/fuzz_policy.h"
#include "webhook/admission_codec.h"

using namespace hybrid_guard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto policy = fuzz::fuzzPolicy();
  static const policy::State state = fuzz::fuzzState();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  webhook::DecodedReview review;
  if (webhook::decodeAdmissionReview(body, review)) return 0;
  for (auto phase : {policy::Phase::Validate, policy::Phase::Mutate}) {
    policy::Decision decision = policy::decide(review.request, *policy, state, phase);
    auto response = webhook::encodeResponse(review, decision, phase == policy::Phase::Mutate);
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
