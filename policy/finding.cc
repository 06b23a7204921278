#include "policy/finding.h"

namespace hybrid_guard::policy {

std::string Finding::str() const {
  std::string out = "[" + rule + "] ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

}  // namespace hybrid_guard::policy
