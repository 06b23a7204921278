#pragma once

#include <filesystem>
#include <string>

#include "webhook/result.h"

namespace hybrid_guard::webhook {

// Where the Kubernetes API is and how to prove who we are to it: what a kubeconfig context or a
// pod's service account gives. Only what hybrid-guard supports: HTTPS with a CA, and a client
// certificate or a bearer token (static, or a file re-read as the kubelet rotates it).
struct KubeConfig {
  std::string host;  // a name or an IP address (IPv6 without brackets)
  int port = 443;
  std::string caFile;  // PEM bundle that verifies the API server (never the system roots)
  std::string caPem;   // or the bundle itself (kubeconfig certificate-authority-data)
  std::string clientCertificatePem;
  std::string clientKeyPem;
  std::string bearerToken;
  std::filesystem::path tokenFile;  // re-read when it changes; wins over bearerToken
  std::string namespace_;           // the webhook's own namespace (ledger ConfigMaps live there)
  std::string source;               // for messages: the kubeconfig path or "in-cluster"
};

// Reads a kubeconfig's current context. Relative file paths are resolved against the kubeconfig's
// folder, as kubectl does. Exec and auth-provider plugins, insecure-skip-tls-verify and a server
// without https are refused with a message naming the field. The namespace is the context's, else
// `defaultNamespace`.
[[nodiscard]] Result<KubeConfig> loadKubeconfig(const std::filesystem::path& file,
                                                const std::string& defaultNamespace);

// The in-cluster configuration: the API server at host:port (KUBERNETES_SERVICE_HOST/PORT, read
// by the caller), and the service account's token, ca.crt and namespace in `accountDir`
// (/var/run/secrets/kubernetes.io/serviceaccount).
[[nodiscard]] Result<KubeConfig> inClusterConfig(const std::string& host, const std::string& port,
                                                 const std::filesystem::path& accountDir);

// "https://host[:port]" (a trailing "/" allowed) into host and port.
[[nodiscard]] Status parseServerUrl(const std::string& url, KubeConfig& config);

std::string base64Decode(std::string_view text, bool& ok);

}  // namespace hybrid_guard::webhook
