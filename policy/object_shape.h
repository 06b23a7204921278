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

  // The member `key` of `parent` if present and of the wanted type, else null (with a finding
  // when present with the wrong type). A JSON null counts as absent.
  const nlohmann::json* object(const nlohmann::json& parent, const char* key, const Path& path);
  const nlohmann::json* array(const nlohmann::json& parent, const char* key, const Path& path);
  const nlohmann::json* string(const nlohmann::json& parent, const char* key, const Path& path);
  const nlohmann::json* integer(const nlohmann::json& parent, const char* key, const Path& path);
  const nlohmann::json* boolean(const nlohmann::json& parent, const char* key, const Path& path);
  // A map whose values must all be strings (labels, annotations).
  const nlohmann::json* stringMap(const nlohmann::json& parent, const char* key, const Path& path);

  void invalid(const Path& path, std::string message);
  bool ok() const { return findings.empty(); }
};

std::string jsonTypeName(const nlohmann::json& v);

}  // namespace hybrid_guard::policy
