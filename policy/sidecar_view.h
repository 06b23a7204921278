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

// One spec.ingress[] entry that carries a `tls` key. Fields are as read; shapes are checked.
struct TlsListener {
  size_t index = 0;
  Path path;  // spec.ingress[index]
  std::optional<long long> portNumber;
  std::optional<std::string> protocol;
  const nlohmann::json* tls = nullptr;  // an object
};

// What hybrid-guard reads of a networking.istio.io Sidecar (v1, v1beta1, v1alpha3).
struct SidecarView {
  std::string namespace_;
  std::string name;
  std::optional<Labels> selector;  // nullopt when workloadSelector.labels is absent or empty
  std::vector<TlsListener> tlsListeners;
  const nlohmann::json* ingress = nullptr;           // spec.ingress as stored, or null
  const nlohmann::json* workloadSelector = nullptr;  // spec.workloadSelector, or null

  bool hybrid() const { return !tlsListeners.empty(); }
  std::vector<std::string> certificatePaths() const;
  HybridSidecar toHybridSidecar() const;
};

// Reads a Sidecar; an object of the wrong shape yields `invalid-object` findings naming paths.
// `requestNamespace` is used when metadata.namespace is absent.
struct SidecarRead {
  SidecarView view;
  std::vector<Finding> invalid;
};
SidecarRead readSidecar(const nlohmann::json& object, std::string_view requestNamespace);

bool isSidecarKind(std::string_view group, std::string_view kind);

// The certificate fields of ServerTLSSettings that name files on the proxy.
inline constexpr const char* kTlsFileFields[] = {"serverCertificate", "privateKey",
                                                 "caCertificates", "caCrl"};

}  // namespace hybrid_guard::policy
