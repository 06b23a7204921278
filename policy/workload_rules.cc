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

  // The patch is the diff between the original and the mutated parts. Only the annotations this
  // mutation sets and the proxy's flag entry can differ, so the diff is taken over just those
  // members: the same operations, in the same order, as diffing the whole metadata and container
  // (untouched members diff to nothing), without copying or walking the rest of the pod.
  const json* originalAnnotations = nullptr;
  if (pod.metadata) {
    auto it = pod.metadata->find("annotations");
    if (it != pod.metadata->end() && !it->is_null()) originalAnnotations = &*it;
  }
  json changed = json::object();  // the annotations set, with their new values
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
          changed[kProxyConfigAnnotation] = parsed->dump();
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
    changed[kProxyConfigAnnotation] = json{{"proxyMetadata", {{kHybridFlag, "true"}}}}.dump();
  }
  changed[kGrantAnnotation] = sidecar->name;
  std::string metadataPointer = pod.location.metadata.jsonPointer();
  if (!originalAnnotations) {
    // A missing or null annotations map: diff would emit a replace of null; add it whole.
    json metadata = pod.metadata ? *pod.metadata : json::object();
    metadata["annotations"] = std::move(changed);
    json original = pod.metadata ? *pod.metadata : json::object();
    if (original.contains("annotations")) original.erase("annotations");
    patch = json::diff(original, metadata, metadataPointer);
    if (!pod.metadata) {
      patch = json::array({{{"op", "add"}, {"path", metadataPointer}, {"value", metadata}}});
    }
  } else if (!originalAnnotations->is_object()) {
    patch = json::diff(*originalAnnotations, changed, metadataPointer + "/annotations");
  } else {
    json before = json::object();
    for (const auto& [key, value] : changed.items()) {
      if (auto it = originalAnnotations->find(key); it != originalAnnotations->end()) {
        before[key] = *it;
      }
    }
    patch = json::diff(before, changed, metadataPointer + "/annotations");
  }

  if (pod.proxy && pod.spec) {
    const json& container =
        (*pod.spec)[pod.proxy->init ? "initContainers" : "containers"][pod.proxy->index];
    auto env = container.find("env");
    bool hadEnv = env != container.end() && !env->is_null();
    const json* entry = nullptr;
    size_t entryIndex = 0;
    if (hadEnv && env->is_array()) {
      for (size_t i = 0; i < env->size(); ++i) {
        const json& e = (*env)[i];
        if (e.is_object() && e.value("name", "") == kHybridFlag) {  // the last one counts
          entry = &e;
          entryIndex = i;
        }
      }
    }
    bool alreadySet = entry && (entry->contains("valueFrom") ||
                                (entry->contains("value") && (*entry)["value"].is_string() &&
                                 parseGoBoolTrue((*entry)["value"].get<std::string>())));
    if (!alreadySet) {
      std::string envPointer = pod.proxy->path.jsonPointer() + "/env";
      json added = {{"name", kHybridFlag}, {"value", "true"}};
      json ops;
      if (!hadEnv) {
        ops = json::array({{{"op", "add"}, {"path", envPointer}, {"value", json::array({added})}}});
      } else if (!env->is_array()) {
        ops = json::diff(*env, json::array({added}), envPointer);
      } else if (entry) {
        json updated = *entry;
        updated["value"] = "true";
        ops = json::diff(*entry, updated, envPointer + "/" + std::to_string(entryIndex));
      } else {
        ops = json::diff(json::array(), json::array({added}), envPointer);  // appends: "/-"
      }
      for (auto& op : ops) patch.push_back(std::move(op));
    }
  }
  return patch;
}

}  // namespace hybrid_guard::policy
