#include "cli/evaluator.h"

#include "policy/sidecar_view.h"
#include "webhook/admission_codec.h"

namespace hybrid_guard::cli {

using nlohmann::json;
using policy::Decision;
using policy::Finding;

namespace {

policy::GroupVersionKind gvkOf(const json& object) {
  policy::GroupVersionKind gvk;
  std::string apiVersion = object.value("apiVersion", "");
  if (auto slash = apiVersion.find('/'); slash != std::string::npos) {
    gvk.group = apiVersion.substr(0, slash);
    gvk.version = apiVersion.substr(slash + 1);
  } else {
    gvk.version = apiVersion;
  }
  gvk.kind = object.value("kind", "");
  return gvk;
}

std::string apiVersionOf(const policy::GroupVersionKind& gvk) {
  return gvk.group.empty() ? gvk.version : gvk.group + "/" + gvk.version;
}

std::string stringAt(const json& object, const char* a, const char* b) {
  auto outer = object.find(a);
  if (outer == object.end() || !outer->is_object()) return "";
  auto inner = outer->find(b);
  return inner != outer->end() && inner->is_string() ? inner->get<std::string>() : "";
}

// Kinds that have no namespace: shown and known without one.
bool isClusterScoped(const std::string& kind) {
  static constexpr const char* kKinds[] = {"Namespace",
                                           "Node",
                                           "PersistentVolume",
                                           "StorageClass",
                                           "ClusterRole",
                                           "ClusterRoleBinding",
                                           "CustomResourceDefinition",
                                           "MutatingWebhookConfiguration",
                                           "ValidatingWebhookConfiguration",
                                           "PriorityClass",
                                           "IngressClass",
                                           "APIService",
                                           "RuntimeClass",
                                           "CSIDriver",
                                           "ValidatingAdmissionPolicy",
                                           "ValidatingAdmissionPolicyBinding"};
  for (const char* k : kKinds) {
    if (kind == k) return true;
  }
  return false;
}

std::string knownKey(const policy::GroupVersionKind& gvk, const std::string& ns,
                     const std::string& name, const std::string& source) {
  if (name.empty()) return "source:" + source;
  return gvk.group + "/" + gvk.kind + "/" + ns + "/" + name;
}

// The shape problems that stop an input from being an object at all.
std::optional<Finding> notAnObject(const json& value) {
  if (!value.is_object()) {
    return Finding{policy::rules::kInvalidObject, "",
                   "a document must be a map with apiVersion and kind, not " +
                       std::string(value.is_array() ? "a list" : "a scalar")};
  }
  for (const char* field : {"apiVersion", "kind"}) {
    auto it = value.find(field);
    if (it == value.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
      return Finding{policy::rules::kInvalidObject, field,
                     std::string("is missing or not a string; every object needs apiVersion and "
                                 "kind")};
    }
  }
  return std::nullopt;
}

}  // namespace

void seedState(const std::vector<InputObject>& objects, const std::string& defaultNamespace,
               policy::State& state) {
  for (const auto& input : objects) {
    const json* object = &input.value;
    std::string requestNamespace = defaultNamespace;
    if (webhook::isAdmissionReview(input.value)) {
      auto request = input.value.find("request");
      if (request == input.value.end() || !request->is_object()) continue;
      auto inner = request->find("object");
      if (inner == request->end() || !inner->is_object()) continue;
      object = &*inner;
      requestNamespace = request->value("namespace", defaultNamespace);
    }
    if (notAnObject(*object)) continue;
    auto gvk = gvkOf(*object);
    if (!policy::isSidecarKind(gvk.group, gvk.kind)) continue;
    auto read = policy::readSidecar(*object, requestNamespace);
    if (read.invalid.empty() && read.view.hybrid() && !read.view.name.empty()) {
      state.upsert(read.view.toHybridSidecar());
    }
  }
}

Evaluator::Evaluator(std::shared_ptr<const policy::Policy> policy, Requester requester)
    : policy_(std::move(policy)), requester_(std::move(requester)) {}

void Evaluator::seed(const std::vector<InputObject>& objects) {
  seedState(objects, requester_.defaultNamespace, state_);
  for (const auto& input : objects) {
    const json& object = input.value;
    if (notAnObject(object) || webhook::isAdmissionReview(object)) continue;
    auto gvk = gvkOf(object);
    std::string ns = stringAt(object, "metadata", "namespace");
    if (ns.empty()) ns = requester_.defaultNamespace;
    known_[knownKey(gvk, ns, stringAt(object, "metadata", "name"), input.source)] = object;
  }
}

EvalResult Evaluator::evaluate(const InputObject& input) {
  EvalResult result;
  result.source = input.source;
  const json& value = input.value;

  if (webhook::isAdmissionReview(value)) {
    auto review = std::make_unique<webhook::DecodedReview>();
    if (auto error = webhook::decodeAdmissionReview(value, *review)) {
      result.kind = "AdmissionReview";
      result.decision.allowed = false;
      result.decision.evaluated = true;
      result.decision.violations.push_back(
          {policy::rules::kInvalidObject, "request", error->message});
      return result;
    }
    const auto& request = review->request;
    result.decision = policy::decide(request, *policy_, state_);
    result.apiVersion = apiVersionOf(request.kind);
    result.kind = request.kind.kind;
    result.namespace_ =
        result.decision.namespace_.empty() ? request.namespace_ : result.decision.namespace_;
    result.name = result.decision.name.empty() ? request.name : result.decision.name;
    result.operation = std::string(policy::toString(request.operation));
    if (result.decision.allowed) {
      policy::applyChange(state_, result.decision.change);
      std::string key = knownKey(request.kind, result.namespace_, result.name, input.source);
      if (request.dryRun) {
        // A dry run changes nothing, not even what is known.
      } else if (request.operation == policy::Operation::Delete) {
        known_.erase(key);
      } else if (request.object) {
        known_[key] = *request.object;
      }
    }
    return result;
  }

  if (auto finding = notAnObject(value)) {
    result.decision.allowed = false;
    result.decision.evaluated = true;
    result.decision.violations.push_back(*finding);
    if (value.is_object()) {
      result.apiVersion =
          value.value("apiVersion", json()).is_string() ? value.value("apiVersion", "") : "";
      result.kind = value.value("kind", json()).is_string() ? value.value("kind", "") : "";
    }
    result.operation = "CREATE";
    return result;
  }

  policy::AdmissionRequest request;
  request.kind = gvkOf(value);
  request.namespace_ = stringAt(value, "metadata", "namespace");
  if (request.namespace_.empty() && !isClusterScoped(request.kind.kind)) {
    request.namespace_ = requester_.defaultNamespace;
  }
  request.name = stringAt(value, "metadata", "name");
  request.user.username = requester_.user;
  request.user.groups = requester_.groups;
  request.object = &value;
  request.uid = input.source;
  std::string key = knownKey(request.kind, request.namespace_, request.name, input.source);
  auto known = known_.find(key);
  if (known != known_.end()) {
    request.operation = policy::Operation::Update;
    request.oldObject = &known->second;
  }

  result.decision = policy::decide(request, *policy_, state_);
  result.apiVersion = value.value("apiVersion", "");
  result.kind = request.kind.kind;
  result.namespace_ = result.decision.namespace_;
  result.name = result.decision.name;
  result.operation = std::string(policy::toString(request.operation));
  if (result.decision.allowed) {
    policy::applyChange(state_, result.decision.change);
    known_[key] = value;
  }
  return result;
}

namespace {

nlohmann::ordered_json findingsToJson(const std::vector<Finding>& findings) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& f : findings) {
    out.push_back({{"rule", f.rule}, {"path", f.path}, {"message", f.message}});
  }
  return out;
}

}  // namespace

nlohmann::ordered_json resultsToJson(const std::vector<EvalResult>& results) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  size_t admitted = 0, denied = 0, warnings = 0;
  for (const auto& r : results) {
    const Decision& d = r.decision;
    list.push_back({{"source", r.source},
                    {"apiVersion", r.apiVersion},
                    {"kind", r.kind},
                    {"namespace", r.namespace_},
                    {"name", r.name},
                    {"operation", r.operation},
                    {"allowed", d.allowed},
                    {"violations", findingsToJson(d.violations)},
                    {"warnings", findingsToJson(d.warnings)},
                    {"patch", nlohmann::ordered_json::parse(d.patch.dump())}});
    (d.allowed ? admitted : denied)++;
    warnings += d.warnings.size();
  }
  return nlohmann::ordered_json{{"results", list},
                                {"summary",
                                 {{"objects", results.size()},
                                  {"admitted", admitted},
                                  {"denied", denied},
                                  {"warnings", warnings}}}};
}

std::string resultsToText(const std::vector<EvalResult>& results) {
  std::string out;
  size_t admitted = 0, denied = 0, warnings = 0;
  for (const auto& r : results) {
    const Decision& d = r.decision;
    std::string verdict = !d.allowed                                     ? "DENY"
                          : (d.violations.empty() && d.warnings.empty()) ? "ALLOW"
                                                                         : "WARN";
    std::string who = r.namespace_.empty() ? r.name : r.namespace_ + "/" + r.name;
    out += verdict + " " + (r.kind.empty() ? "object" : r.kind) + " " + who + " " + r.source + "\n";
    for (const auto& v : d.violations) out += "  " + v.str() + "\n";
    for (const auto& w : d.warnings) out += "  warning: " + w.str() + "\n";
    if (!d.patch.empty()) {
      out += "  patch: " + std::to_string(d.patch.size()) + " operation" +
             (d.patch.size() == 1 ? "" : "s") + " " + d.patch.dump() + "\n";
    }
    (d.allowed ? admitted : denied)++;
    warnings += d.warnings.size();
  }
  out += std::to_string(results.size()) + " objects: " + std::to_string(admitted) + " admitted, " +
         std::to_string(denied) + " denied, " + std::to_string(warnings) + " warnings\n";
  return out;
}

}  // namespace hybrid_guard::cli
