#include "policy/workload_view.h"

#include <algorithm>

#include "policy/document.h"
#include "policy/object_shape.h"

namespace hybrid_guard::policy {

using nlohmann::json;

bool parseGoBoolTrue(std::string_view s) {
  return s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True";
}

std::optional<PodLocation> podLocationFor(std::string_view group, std::string_view kind) {
  auto at = [](std::vector<std::string> parent) {
    Path p;
    for (const auto& step : parent) p = p / step;
    return PodLocation{parent, p / "metadata", p / "spec"};
  };
  if (group.empty() && kind == "Pod") return at({});
  bool apps = group == "apps" || group == "extensions";
  if ((apps && (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
                kind == "ReplicaSet")) ||
      (group == "batch" && kind == "Job")) {
    return at({"spec", "template"});
  }
  if (group == "batch" && kind == "CronJob") {
    return at({"spec", "jobTemplate", "spec", "template"});
  }
  return std::nullopt;
}

std::optional<json> parseProxyConfig(const std::string& text) {
  ParseLimits limits;
  limits.maxBytes = 256 * 1024;
  limits.maxDepth = 32;
  limits.lineDepth = -1;
  auto docs = parseDocuments(text, limits);
  if (!docs) return std::nullopt;
  if (docs->empty()) return json::object();
  if (docs->size() != 1 || !docs->front().value.is_object()) return std::nullopt;
  return std::move(docs->front().value);
}

bool pathUnder(std::string_view path, std::string_view prefix) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  if (prefix == "/") return !path.empty() && path[0] == '/';
  if (path.size() < prefix.size() || path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

std::optional<std::string> PodView::annotation(std::string_view key) const {
  if (!annotations) return std::nullopt;
  auto it = annotations->find(key);
  if (it == annotations->end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

bool PodView::optedOutOfInjection() const {
  auto optsOut = [](const std::string& value) {
    std::string lower = value;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return !(lower == "y" || lower == "yes" || lower == "true" || lower == "on");
  };
  if (auto it = labels.find(kInjectKey); it != labels.end() && optsOut(it->second)) return true;
  if (auto value = annotation(kInjectKey); value && optsOut(*value)) return true;
  return false;
}

std::vector<std::string> PodView::mountPaths() const {
  std::vector<std::string> paths;
  if (auto mounts = annotation(kUserVolumeMountAnnotation)) {
    json parsed = json::parse(*mounts, nullptr, false);
    if (parsed.is_object()) {
      for (const auto& [name, mount] : parsed.items()) {
        if (mount.is_object() && mount.contains("mountPath") && mount["mountPath"].is_string()) {
          paths.push_back(mount["mountPath"].get<std::string>());
        }
      }
    }
  }
  if (proxy && spec) {
    const json& containers = (*spec)[proxy->init ? "initContainers" : "containers"];
    const json& container = containers[proxy->index];
    auto vm = container.find("volumeMounts");
    if (vm != container.end() && vm->is_array()) {
      for (const auto& mount : *vm) {
        if (mount.is_object() && mount.contains("mountPath") && mount["mountPath"].is_string()) {
          paths.push_back(mount["mountPath"].get<std::string>());
        }
      }
    }
  }
  return paths;
}

namespace {

// A map whose member `name` is absent, null, or a string other than `wanted`: nothing to check
// or read in it beyond that, so the caller skips it without building the paths of findings.
bool namedOtherThan(const json& item, const char* wanted) {
  if (!item.is_object()) return false;
  auto name = item.find("name");
  if (name == item.end() || name->is_null()) return true;
  return name->is_string() && name->get_ref<const std::string&>() != wanted;
}

// Reads containers or initContainers: shapes, the istio-proxy container and its flag entry.
void readContainers(ShapeChecker& check, PodView& pod, const char* field, bool init) {
  Path listPath = pod.location.spec / field;
  const json* list = check.array(*pod.spec, field, pod.location.spec);
  if (!list) return;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& container = (*list)[i];
    if (namedOtherThan(container, kProxyContainer)) continue;
    Path cPath = listPath[i];
    if (!container.is_object()) {
      check.invalid(cPath, "a container must be a map, not " + jsonTypeName(container));
      continue;
    }
    const json* name = check.string(container, "name", cPath);
    if (!name || name->get_ref<const std::string&>() != kProxyContainer) continue;
    if (!pod.proxy) pod.proxy = ProxyContainerRef{init, i, cPath};
    const json* env = check.array(container, "env", cPath);
    if (!env) continue;
    std::optional<Path> flag;
    bool flagSet = false;
    for (size_t j = 0; j < env->size(); ++j) {
      const json& entry = (*env)[j];
      if (namedOtherThan(entry, kHybridFlag)) continue;
      Path ePath = (cPath / "env")[j];
      if (!entry.is_object()) {
        check.invalid(ePath, "an env entry must be a map, not " + jsonTypeName(entry));
        continue;
      }
      const json* entryName = check.string(entry, "name", ePath);
      if (!entryName || entryName->get_ref<const std::string&>() != kHybridFlag) continue;
      const json* value = check.string(entry, "value", ePath);
      const json* valueFrom = check.object(entry, "valueFrom", ePath);
      // The last entry of a name is the one the container gets.
      flagSet = valueFrom != nullptr || (value && parseGoBoolTrue(value->get<std::string>()));
      flag = ePath;
    }
    if (flagSet && !pod.flagPath) pod.flagPath = flag;
  }
}

bool proxyConfigSetsFlag(const json& config) {
  auto meta = config.find("proxyMetadata");
  if (meta == config.end() || !meta->is_object()) return false;
  auto flag = meta->find(kHybridFlag);
  if (flag == meta->end()) return false;
  if (flag->is_boolean()) return flag->get<bool>();
  if (flag->is_number_integer()) return flag->get<long long>() == 1;
  return flag->is_string() && parseGoBoolTrue(flag->get<std::string>());
}

}  // namespace

WorkloadRead readWorkload(const json& object, const PodLocation& location, std::string_view kind,
                          std::string_view requestNamespace) {
  WorkloadRead read;
  WorkloadView& view = read.view;
  view.kind = std::string(kind);
  ShapeChecker check;
  Path root;
  if (!object.is_object()) {
    check.invalid(root, "a " + view.kind + " must be a map, not " + jsonTypeName(object));
    read.invalid = std::move(check.findings);
    return read;
  }
  const json* metadata = check.object(object, "metadata", root);
  if (!metadata && check.ok()) {  // absent or null; a wrong type was reported above
    check.invalid(root / "metadata", "is missing; a " + view.kind + " needs metadata");
  }
  if (metadata) {
    Path metadataPath = root / "metadata";
    const json* name = check.string(*metadata, "name", metadataPath);
    const json* generateName = check.string(*metadata, "generateName", metadataPath);
    if (name && !name->get_ref<const std::string&>().empty()) {
      view.displayName = name->get<std::string>();
    } else if (generateName) {
      view.displayName = generateName->get<std::string>() + "*";
    }
    if (const json* ns = check.string(*metadata, "namespace", metadataPath)) {
      view.namespace_ = ns->get<std::string>();
    }
    if (const json* owners = check.array(*metadata, "ownerReferences", metadataPath)) {
      for (size_t i = 0; i < owners->size(); ++i) {
        const json& owner = (*owners)[i];
        Path oPath = (metadataPath / "ownerReferences")[i];
        if (!owner.is_object()) {
          check.invalid(oPath, "an owner reference must be a map, not " + jsonTypeName(owner));
          continue;
        }
        if (const json* controller = check.boolean(owner, "controller", oPath)) {
          view.controllerOwned = view.controllerOwned || controller->get<bool>();
        }
      }
    }
  }
  if (view.namespace_.empty()) view.namespace_ = std::string(requestNamespace);

  // Walk to the pod (template): each step must be a map.
  PodView& pod = view.pod;
  pod.location = location;
  const json* podParent = &object;
  Path walked;
  for (const auto& step : location.parent) {
    podParent = check.object(*podParent, step.c_str(), walked);
    walked = walked / step;
    if (!podParent) {
      if (check.ok()) check.invalid(walked, "is missing; a " + view.kind + " needs a pod template");
      read.invalid = std::move(check.findings);
      return read;
    }
  }
  // `walked` is now where the pod's metadata and spec sit (location.metadata and .spec's parent).
  pod.metadata = check.object(*podParent, "metadata", walked);
  pod.spec = check.object(*podParent, "spec", walked);
  if (pod.metadata) {
    if (const json* labels = check.stringMap(*pod.metadata, "labels", location.metadata)) {
      for (const auto& [k, v] : labels->items()) pod.labels.emplace(k, v.get<std::string>());
    }
    pod.annotations = check.stringMap(*pod.metadata, "annotations", location.metadata);
  }
  if (pod.spec) {
    if (const json* host = check.boolean(*pod.spec, "hostNetwork", location.spec)) {
      pod.hostNetwork = host->get<bool>();
    }
    readContainers(check, pod, "containers", false);
    readContainers(check, pod, "initContainers", true);
  }
  if (auto config = pod.annotation(kProxyConfigAnnotation)) {
    auto parsed = parseProxyConfig(*config);
    if (!parsed) {
      pod.proxyConfigUnparseable = true;
    } else if (proxyConfigSetsFlag(*parsed) && !pod.flagPath) {
      pod.flagPath = location.metadata / "annotations" / kProxyConfigAnnotation;
    }
  }
  read.invalid = std::move(check.findings);
  return read;
}

}  // namespace hybrid_guard::policy
