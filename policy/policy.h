#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/document.h"
#include "policy/expected.h"

namespace re2 {
class RE2;
}

namespace hybrid_guard::policy {

enum class Enforcement { Deny, Warn, DryRun };
std::string_view toString(Enforcement e);

// Istio ServerTLSSettings.TLSmode; PASSTHROUGH is what an unset mode means.
enum class TlsMode { Passthrough, Simple, Mutual, AutoPassthrough, IstioMutual, OptionalMutual };
std::optional<TlsMode> parseTlsMode(std::string_view name);
std::string_view toString(TlsMode mode);

// Istio ServerTLSSettings.TLSProtocol, ordered; TLS_AUTO reads as TLSV1_2 on sidecar ingress.
enum class TlsVersion { V1_0 = 10, V1_1 = 11, V1_2 = 12, V1_3 = 13 };
std::optional<TlsVersion> parseTlsVersion(std::string_view name);  // TLS_AUTO → V1_2
std::string_view toString(TlsVersion v);

constexpr int kMaxSupportedWorkloads = 10'000;
bool isIstioReservedPort(long long port);
const std::vector<int>& istioReservedPorts();

// Exact names and RE2 full-match patterns, compiled once at load.
class NameMatcher {
 public:
  NameMatcher();
  ~NameMatcher();
  NameMatcher(NameMatcher&&) noexcept;
  NameMatcher& operator=(NameMatcher&&) noexcept;

  void addExact(std::string name);
  void addPattern(std::shared_ptr<const re2::RE2> pattern);
  bool matches(std::string_view name) const;
  bool empty() const;

 private:
  std::vector<std::string> exact_;
  std::vector<std::shared_ptr<const re2::RE2>> patterns_;
};

struct NamespacePatternQuota {
  std::shared_ptr<const re2::RE2> pattern;
  int maxWorkloads = 1;
};

struct PortRange {
  int from = 0;
  int to = 0;
};

// A loaded, validated HybridModePolicy (DESIGN §3). Immutable once loaded; share it as
// std::shared_ptr<const Policy>.
struct Policy {
  std::string name;
  Enforcement enforcement = Enforcement::Deny;
  std::string meshRootNamespace = "istio-system";
  NameMatcher exemptNamespaces;
  std::unordered_map<std::string, int> namespaceQuotas;  // exact entries
  std::vector<NamespacePatternQuota> namespacePatterns;  // in list order
  int clusterMaxWorkloads = kMaxSupportedWorkloads;
  bool requestersSet = false;
  NameMatcher requesterUsers;
  NameMatcher requesterGroups;
  bool requireWorkloadSelector = true;
  std::vector<TlsMode> tlsModes = {TlsMode::Simple, TlsMode::Mutual};
  TlsVersion minTlsVersion = TlsVersion::V1_2;
  std::vector<std::string> cipherSuites;                     // empty: any
  std::optional<std::vector<std::string>> certificatePaths;  // absent: any absolute path
  std::optional<std::vector<PortRange>> ports;               // absent: any non-reserved
  bool injectionEnabled = true;

  // The namespace's quota, or nullopt when hybrid mode is not allowed there.
  std::optional<int> namespaceQuota(std::string_view ns) const;
  // Exempt for pods and workloads: the policy's list plus the three kube-* namespaces.
  bool isExempt(std::string_view ns) const;
  bool allowsTlsMode(TlsMode mode) const;
  bool allowsPort(long long port) const;
  bool allowsCipherSuite(std::string_view suite) const;
};

struct PolicyError {
  std::string file;
  int line = 0;  // 0 when unknown
  std::string path;
  std::string message;
  std::string str() const;  // file:line: path: message
};

using PolicyResult = Expected<std::shared_ptr<const Policy>, std::vector<PolicyError>>;

// Parses and validates a policy; every error is reported at once.
PolicyResult loadPolicy(std::string_view text, std::string_view fileName);
PolicyResult loadPolicyFile(const std::string& fileName);

// The built-in policy of `serve` and `eval` without --policy: hybrid mode allowed nowhere.
std::shared_ptr<const Policy> defaultPolicy();

}  // namespace hybrid_guard::policy
