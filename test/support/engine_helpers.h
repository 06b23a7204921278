#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/decision.h"
#include "policy/document.h"
#include "policy/policy.h"
#include "policy/sidecar_view.h"

namespace hybrid_guard::test {

inline nlohmann::json yaml(const std::string& text) {
  auto docs = policy::parseDocuments(text);
  if (!docs || docs->size() != 1) throw std::runtime_error("test YAML must hold one document");
  return docs->front().value;
}

inline std::shared_ptr<const policy::Policy> policyFrom(const std::string& specYaml) {
  std::string text =
      "apiVersion: hybrid-guard.io/v1alpha1\nkind: HybridModePolicy\nmetadata:\n  name: "
      "t\nspec:\n" +
      specYaml;
  auto loaded = policy::loadPolicy(text, "policy.yaml");
  if (!loaded) {
    std::string all;
    for (const auto& e : loaded.error()) all += e.str() + "\n";
    throw std::runtime_error("test policy invalid:\n" + all);
  }
  return *loaded;
}

// A request as the API server would send it for `object` (kind read from the object).
struct TestRequest {
  nlohmann::json object;
  nlohmann::json oldObject;
  policy::AdmissionRequest request;

  explicit TestRequest(nlohmann::json obj, policy::Operation op = policy::Operation::Create,
                       nlohmann::json old = nullptr)
      : object(std::move(obj)), oldObject(std::move(old)) {
    const nlohmann::json& source = object.is_object() ? object : oldObject;
    std::string apiVersion = source.is_object() ? source.value("apiVersion", "") : "";
    auto slash = apiVersion.find('/');
    request.kind.group = slash == std::string::npos ? "" : apiVersion.substr(0, slash);
    request.kind.version = slash == std::string::npos ? apiVersion : apiVersion.substr(slash + 1);
    request.kind.kind = source.is_object() ? source.value("kind", "") : "";
    if (source.is_object() && source.contains("metadata") && source["metadata"].is_object()) {
      request.namespace_ = source["metadata"].value("namespace", "default");
      request.name = source["metadata"].value("name", "");
    }
    request.operation = op;
    request.uid = "test-uid";
    request.object = op == policy::Operation::Delete ? nullptr : &object;
    request.oldObject = oldObject.is_null() ? nullptr : &oldObject;
  }
  TestRequest(const TestRequest&) = delete;
};

inline policy::Decision decideOn(const nlohmann::json& object, const policy::Policy& p,
                                 const policy::State& state,
                                 policy::Operation op = policy::Operation::Create,
                                 const nlohmann::json& old = nullptr) {
  TestRequest r(object, op, old);
  return policy::decide(r.request, p, state);
}

inline std::vector<std::string> ruleIds(const std::vector<policy::Finding>& findings) {
  std::vector<std::string> ids;
  for (const auto& f : findings) ids.push_back(f.rule);
  return ids;
}

inline void admit(policy::State& state, const nlohmann::json& sidecar) {
  auto read = policy::readSidecar(sidecar, "default");
  if (!read.invalid.empty() || !read.view.hybrid())
    throw std::runtime_error("not a hybrid Sidecar");
  state.upsert(read.view.toHybridSidecar());
}

}  // namespace hybrid_guard::test
