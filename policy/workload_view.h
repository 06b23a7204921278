#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/finding.h"
#include "policy/path.h"
#include "policy/state.h"

namespace hybrid_guard::policy {

inline constexpr const char* kHybridFlag = "SIDECAR_IN_HYBRID_MODE";
inline constexpr const char* kProxyConfigAnnotation = "proxy.istio.io/config";
inline constexpr const char* kUserVolumeMountAnnotation = "sidecar.istio.io/userVolumeMount";
inline constexpr const char* kInjectKey = "sidecar.istio.io/inject";
inline constexpr const char* kGrantAnnotation = "hybrid-guard.io/sidecar";
inline constexpr const char* kProxyContainer = "istio-proxy";

// Go's strconv.ParseBool, true side: 1, t, T, true, TRUE, True.
bool parseGoBoolTrue(std::string_view s);

// Where the pod (or the pod template) sits inside an object of a workload kind.
struct PodLocation {
  std::vector<std::string> parent;  // fields leading to the map holding metadata and spec
  Path metadata;                    // e.g. spec.template.metadata
  Path spec;                        // e.g. spec.template.spec
};

// Pod, or the pod-template owners of DESIGN §4; nullopt for any other kind.
std::optional<PodLocation> podLocationFor(std::string_view group, std::string_view kind);

struct ProxyContainerRef {
  bool init = false;  // in initContainers (native sidecar)
  size_t index = 0;
  Path path;
};

// The pod part of a Pod or workload: what the rules and the mutation read.
struct PodView {
  PodLocation location;
  const nlohmann::json* metadata = nullptr;  // may be null when absent
  const nlohmann::json* spec = nullptr;
  Labels labels;
  const nlohmann::json* annotations = nullptr;
  bool hostNetwork = false;
  std::optional<ProxyContainerRef> proxy;  // the istio-proxy container, if injected

  // Where the hybrid flag is set, if anywhere: the env entry or the ProxyConfig annotation.
  std::optional<Path> flagPath;
  bool proxyConfigUnparseable = false;

  std::optional<std::string> annotation(std::string_view key) const;
  bool optedOutOfInjection() const;  // sidecar.istio.io/inject label or annotation, as Istio reads
  std::vector<std::string> mountPaths() const;  // userVolumeMount and istio-proxy volumeMounts
};

struct WorkloadView {
  std::string kind;
  std::string namespace_;
  std::string displayName;  // name, or generateName followed by `*`
  bool controllerOwned = false;
  PodView pod;
};

struct WorkloadRead {
  WorkloadView view;
  std::vector<Finding> invalid;
};
WorkloadRead readWorkload(const nlohmann::json& object, const PodLocation& location,
                          std::string_view kind, std::string_view requestNamespace);

// The ProxyConfig of a `proxy.istio.io/config` annotation (YAML or JSON), or nullopt when it
// cannot be read as a map.
std::optional<nlohmann::json> parseProxyConfig(const std::string& text);

// Whether `path` lies under `prefix`, compared by whole path components.
bool pathUnder(std::string_view path, std::string_view prefix);

}  // namespace hybrid_guard::policy
