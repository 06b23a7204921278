// libFuzzer target: mutation of arbitrary pods. The patch must apply back to the pod, and the
// patched pod must need no further patch (idempotence).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "policy/document.h"
#include "test/fuzz/fuzz_policy.h"

using namespace hybrid_guard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto policy = fuzz::fuzzPolicy();
  static const policy::State state = fuzz::fuzzState();
  auto docs = policy::parseDocuments(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!docs || docs->size() != 1) return 0;
  nlohmann::json pod = std::move(docs->front().value);
  policy::AdmissionRequest request;
  request.kind = {"", "v1", "Pod"};
  request.namespace_ = "payments";
  request.operation = policy::Operation::Create;
  request.object = &pod;
  auto decision = policy::decide(request, *policy, state, policy::Phase::Mutate);
  if (decision.patch.empty()) return 0;
  nlohmann::json patched;
  try {
    patched = pod.patch(decision.patch);
  } catch (const std::exception&) {
    std::abort();
  }
  request.object = &patched;
  auto again = policy::decide(request, *policy, state, policy::Phase::Mutate);
  if (!again.patch.empty()) std::abort();
  return 0;
}
