#pragma once

#include <string>

namespace hybrid_guard::policy {

// A violated rule or a warning: rule id, path of the offending field, how to fix it.
struct Finding {
  std::string rule;
  std::string path;
  std::string message;

  std::string str() const;  // "[rule] path: message"
  bool operator==(const Finding&) const = default;
};

namespace rules {
inline constexpr const char* kMeshRootNamespace = "mesh-root-namespace";
inline constexpr const char* kNamespaceNotAllowed = "namespace-not-allowed";
inline constexpr const char* kRequesterNotAllowed = "requester-not-allowed";
inline constexpr const char* kWorkloadSelectorRequired = "workload-selector-required";
inline constexpr const char* kTlsMode = "tls-mode";
inline constexpr const char* kTlsPortProtocol = "tls-port-protocol";
inline constexpr const char* kTlsUnsupportedField = "tls-unsupported-field";
inline constexpr const char* kTlsCredentials = "tls-credentials";
inline constexpr const char* kTlsCertificatePath = "tls-certificate-path";
inline constexpr const char* kTlsMinVersion = "tls-min-version";
inline constexpr const char* kTlsCipherSuites = "tls-cipher-suites";
inline constexpr const char* kPortNotAllowed = "port-not-allowed";
inline constexpr const char* kNamespaceQuotaExceeded = "namespace-quota-exceeded";
inline constexpr const char* kClusterQuotaExceeded = "cluster-quota-exceeded";
inline constexpr const char* kHybridFlagUnapproved = "hybrid-flag-unapproved";
inline constexpr const char* kInvalidObject = "invalid-object";
inline constexpr const char* kSelectorOverlap = "selector-overlap";
inline constexpr const char* kCertificateNotMounted = "certificate-not-mounted";
inline constexpr const char* kProxyConfigUnparseable = "proxy-config-unparseable";
}  // namespace rules

}  // namespace hybrid_guard::policy
