#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hybrid_guard::policy {

// A location in an object, printed as DESIGN §2 says: `spec.ingress[0].tls.mode`,
// `metadata.annotations["proxy.istio.io/config"]`; also as a JSON Pointer for patches.
class Path {
 public:
  Path() = default;
  static Path parse(std::string_view dotted);  // "spec.template.spec": fields only

  Path field(std::string_view name) const;
  Path index(size_t i) const;
  Path operator/(std::string_view name) const { return field(name); }
  Path operator[](size_t i) const { return index(i); }

  bool empty() const { return segments_.empty(); }
  std::string str() const;
  std::string jsonPointer() const;

 private:
  std::vector<std::variant<std::string, size_t>> segments_;
};

// RFC 6901 escaping of one reference token: `~` as `~0`, then `/` as `~1`.
std::string escapeJsonPointerToken(std::string_view token);

}  // namespace hybrid_guard::policy
