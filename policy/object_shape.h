#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/finding.h"
#include "policy/path.h"

namespace hybrid_guard::policy {

// Collects `invalid-object` findings while reading untrusted objects.
class ShapeChecker {
 public:
  std::vector<Finding> findings;

  // The member `key` of `parent` (found at `parentPath`) if present and of the wanted type, else
  // null (with a finding at parentPath.key when present with the wrong type). A JSON null counts
  // as absent. The member's path is built only for a finding: reading a well-formed object
  // allocates no paths.
  const nlohmann::json* object(const nlohmann::json& parent, const char* key,
                               const Path& parentPath);
  const nlohmann::json* array(const nlohmann::json& parent, const char* key,
                              const Path& parentPath);
  const nlohmann::json* string(const nlohmann::json& parent, const char* key,
                               const Path& parentPath);
  const nlohmann::json* integer(const nlohmann::json& parent, const char* key,
                                const Path& parentPath);
  const nlohmann::json* boolean(const nlohmann::json& parent, const char* key,
                                const Path& parentPath);
  // A map whose values must all be strings (labels, annotations).
  const nlohmann::json* stringMap(const nlohmann::json& parent, const char* key,
                                  const Path& parentPath);

  void invalid(const Path& path, std::string message);
  bool ok() const { return findings.empty(); }
};

std::string jsonTypeName(const nlohmann::json& v);

}  // namespace hybrid_guard::policy
