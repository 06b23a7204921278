#include "policy/rules.h"

namespace hybrid_guard::policy {

using nlohmann::json;

namespace {

std::string inQuotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

std::string describe(const WorkloadView& w) {
  return w.kind == "Pod" ? std::string("the pod") : "the pod template of this " + w.kind;
}

}  // namespace

void checkWorkloadRules(const WorkloadView& workload, const WorkloadView* old,
                        const AdmissionRequest& request, const Policy& policy, const State& state,
                        Decision& decision) {
  const PodView& pod = workload.pod;
  const HybridSidecar* selectedBy = state.selecting(workload.namespace_, pod.labels);

  bool addsFlag =
      pod.flagPath && !(request.operation == Operation::Update && old && old->pod.flagPath);
  if (addsFlag) {
    std::optional<std::string> reason;
    if (!policy.namespaceQuota(workload.namespace_) ||
        workload.namespace_ == policy.meshRootNamespace) {
      reason = "hybrid mode is not allowed in namespace " + inQuotes(workload.namespace_) +
               "; remove " + kHybridFlag + " or ask the platform team to allow the namespace";
    } else if (!selectedBy) {
      reason = std::string(kHybridFlag) + " is set but no admitted hybrid Sidecar in namespace " +
               inQuotes(workload.namespace_) + " selects " + describe(workload) +
               "; create a hybrid Sidecar whose workloadSelector matches its labels, or remove "
               "the flag";
    }
    if (reason) {
      Finding finding{rules::kHybridFlagUnapproved, pod.flagPath->str(), *reason};
      // What a controller runs is never blocked: a rollout must not stop because a Sidecar went.
      if (workload.controllerOwned) {
        decision.warnings.push_back(std::move(finding));
      } else {
        decision.violations.push_back(std::move(finding));
      }
    }
  }

  if (selectedBy && !selectedBy->certificatePaths.empty()) {
    auto mounts = pod.mountPaths();
    for (const auto& file : selectedBy->certificatePaths) {
      bool covered = std::any_of(mounts.begin(), mounts.end(),
                                 [&](const std::string& m) { return pathUnder(file, m); });
      if (!covered) {
        decision.warnings.push_back(
            {rules::kCertificateNotMounted,
             (pod.location.metadata / "annotations" / kUserVolumeMountAnnotation).str(),
             "hybrid Sidecar " + inQuotes(selectedBy->name) + " reads " + inQuotes(file) +
                 " but no sidecar.istio.io/userVolumeMount covers it; mount the certificate "
                 "Secret into the proxy at that folder"});
        break;
      }
    }
  }
}

json mutationPatch(const WorkloadView& view, const Policy& policy, const State& state,
                   Decision& decision) {
  json patch = json::array();
  const PodView& pod = view.pod;
  if (!policy.injectionEnabled || policy.enforcement == Enforcement::DryRun) return patch;
  if (policy.isExempt(view.namespace_) || !policy.namespaceQuota(view.namespace_) ||
      view.namespace_ == policy.meshRootNamespace) {
    return patch;
  }
  if (pod.hostNetwork || pod.optedOutOfInjection()) return patch;
  const HybridSidecar* sidecar = state.selecting(view.namespace_, pod.labels);
  if (!sidecar) return patch;

  // Mutate copies of the two parts we touch, then diff: the patch is exactly the change.
  json metadata = pod.metadata ? *pod.metadata : json::object();
  json& annotations = metadata["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  if (auto config = pod.annotation(kProxyConfigAnnotation)) {
    if (auto parsed = parseProxyConfig(*config)) {
      json& meta = (*parsed)["proxyMetadata"];
      if (meta.is_null()) meta = json::object();
      if (!meta.is_object()) {
        decision.warnings.push_back(
            {rules::kProxyConfigUnparseable,
             (pod.location.metadata / "annotations" / kProxyConfigAnnotation).str(),
             "proxyMetadata is not a map, so " + std::string(kHybridFlag) +
                 " could not be merged into it; fix the annotation"});
      } else {
        const json& current = meta[kHybridFlag];
        bool alreadySet = (current.is_string() && parseGoBoolTrue(current.get<std::string>())) ||
                          (current.is_boolean() && current.get<bool>());
        if (!alreadySet) {
          meta[kHybridFlag] = "true";
          annotations[kProxyConfigAnnotation] = parsed->dump();
        }
      }
    } else {
      decision.warnings.push_back(
          {rules::kProxyConfigUnparseable,
           (pod.location.metadata / "annotations" / kProxyConfigAnnotation).str(),
           "the annotation is not a YAML or JSON ProxyConfig, so " + std::string(kHybridFlag) +
               " could not be merged into it; fix the annotation"});
    }
  } else {
    annotations[kProxyConfigAnnotation] = json{{"proxyMetadata", {{kHybridFlag, "true"}}}}.dump();
  }
  annotations[kGrantAnnotation] = sidecar->name;
  if (!pod.metadata || !pod.metadata->contains("annotations") ||
      (*pod.metadata)["annotations"].is_null()) {
    // A missing or null annotations map: diff would emit a replace of null; add it whole.
    json original = pod.metadata ? *pod.metadata : json::object();
    if (original.contains("annotations")) original.erase("annotations");
    patch = json::diff(original, metadata, pod.location.metadata.jsonPointer());
    if (!pod.metadata) {
      patch = json::array(
          {{{"op", "add"}, {"path", pod.location.metadata.jsonPointer()}, {"value", metadata}}});
    }
  } else {
    patch = json::diff(*pod.metadata, metadata, pod.location.metadata.jsonPointer());
  }

  if (pod.proxy && pod.spec) {
    const json& original =
        (*pod.spec)[pod.proxy->init ? "initContainers" : "containers"][pod.proxy->index];
    json container = original;
    json& env = container["env"];
    if (!env.is_array()) env = json::array();
    json* entry = nullptr;
    for (auto& e : env) {
      if (e.is_object() && e.value("name", "") == kHybridFlag) entry = &e;  // the last one counts
    }
    bool alreadySet = entry && (entry->contains("valueFrom") ||
                                (entry->contains("value") && (*entry)["value"].is_string() &&
                                 parseGoBoolTrue((*entry)["value"].get<std::string>())));
    if (!alreadySet) {
      if (entry) {
        (*entry)["value"] = "true";
      } else {
        env.push_back({{"name", kHybridFlag}, {"value", "true"}});
      }
      json ops;
      if (!original.contains("env") || original["env"].is_null()) {
        json base = original;
        base.erase("env");
        ops = json::diff(base, container, pod.proxy->path.jsonPointer());
      } else {
        ops = json::diff(original, container, pod.proxy->path.jsonPointer());
      }
      for (auto& op : ops) patch.push_back(std::move(op));
    }
  }
  return patch;
}

}  // namespace hybrid_guard::policy
