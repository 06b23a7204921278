// libFuzzer target: the policy loader on arbitrary text (YAML or JSON).
#include <cstdint>
#include <string_view>

#include "policy/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto loaded = hybrid_guard::policy::loadPolicy(text, "fuzz.yaml");
  if (loaded) {
    // A loaded policy answers its questions without failing.
    (void)(*loaded)->namespaceQuota("payments");
    (void)(*loaded)->isExempt("kube-system");
  } else {
    for (const auto& e : loaded.error()) (void)e.str();
  }
  return 0;
}
