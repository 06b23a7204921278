#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace hybrid_guard::policy {

enum class Operation { Create, Update, Delete, Connect };
std::string_view toString(Operation op);

struct GroupVersionKind {
  std::string group;
  std::string version;
  std::string kind;
};

struct UserInfo {
  std::string username;
  std::vector<std::string> groups;
};

// What the engine needs of an admission request; the objects are borrowed, not copied.
struct AdmissionRequest {
  std::string uid;
  GroupVersionKind kind;
  std::string namespace_;
  std::string name;
  Operation operation = Operation::Create;
  UserInfo user;
  const nlohmann::json* object = nullptr;     // null for DELETE
  const nlohmann::json* oldObject = nullptr;  // null for CREATE
  bool dryRun = false;
};

}  // namespace hybrid_guard::policy
