#include "policy/object_shape.h"

namespace hybrid_guard::policy {

using nlohmann::json;

std::string jsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "a map";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_float:
      return "a decimal number";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    default:
      return "binary data";
  }
}

void ShapeChecker::invalid(const Path& path, std::string message) {
  findings.push_back({rules::kInvalidObject, path.str(), std::move(message)});
}

namespace {
const json* member(const json& parent, const char* key) {
  if (!parent.is_object()) return nullptr;
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return nullptr;
  return &*it;
}
}  // namespace

#define HG_TYPED_MEMBER(fn, check, what)                                                      \
  const json* ShapeChecker::fn(const json& parent, const char* key, const Path& parentPath) { \
    const json* v = member(parent, key);                                                      \
    if (!v) return nullptr;                                                                   \
    if (!v->check()) {                                                                        \
      invalid(parentPath / key, std::string("must be " what ", not ") + jsonTypeName(*v));    \
      return nullptr;                                                                         \
    }                                                                                         \
    return v;                                                                                 \
  }

HG_TYPED_MEMBER(object, is_object, "a map")
HG_TYPED_MEMBER(array, is_array, "a list")
HG_TYPED_MEMBER(string, is_string, "a string")
HG_TYPED_MEMBER(integer, is_number_integer, "an integer")
HG_TYPED_MEMBER(boolean, is_boolean, "true or false")
#undef HG_TYPED_MEMBER

const json* ShapeChecker::stringMap(const json& parent, const char* key, const Path& parentPath) {
  const json* v = object(parent, key, parentPath);
  if (!v) return nullptr;
  bool good = true;
  for (const auto& [k, value] : v->items()) {
    if (!value.is_string()) {
      invalid(parentPath / key / k, "must be a string, not " + jsonTypeName(value));
      good = false;
    }
  }
  return good ? v : nullptr;
}

}  // namespace hybrid_guard::policy
