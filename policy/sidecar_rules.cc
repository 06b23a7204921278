#include <algorithm>
#include <cctype>

#include "policy/rules.h"

namespace hybrid_guard::policy {

using nlohmann::json;

namespace {

std::string inQuotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::string joinModes(const std::vector<TlsMode>& modes) {
  std::string out;
  for (size_t i = 0; i < modes.size(); ++i) {
    if (i > 0) out += i + 1 == modes.size() ? " or " : ", ";
    out += toString(modes[i]);
  }
  return out;
}

const std::string* stringField(const json& tls, const char* key) {
  auto it = tls.find(key);
  if (it == tls.end() || !it->is_string()) return nullptr;
  const auto& s = it->get_ref<const std::string&>();
  return s.empty() ? nullptr : &s;
}

bool nonEmptyList(const json& tls, const char* key) {
  auto it = tls.find(key);
  return it != tls.end() && it->is_array() && !it->empty();
}

bool hasDotDotComponent(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (path.substr(start, slash - start) == "..") return true;
    start = slash + 1;
  }
  return false;
}

class SidecarChecker {
 public:
  SidecarChecker(const Policy& policy, Decision& decision) : policy_(policy), decision_(decision) {}

  void violation(const char* rule, const Path& path, std::string message) {
    decision_.violations.push_back({rule, path.str(), std::move(message)});
  }

  void listener(const TlsListener& l) {
    const json& tls = *l.tls;
    Path tlsPath = l.path / "tls";
    std::optional<TlsMode> mode = TlsMode::Passthrough;
    if (const std::string* name = stringField(tls, "mode")) mode = parseTlsMode(*name);
    if (!mode) {
      violation(rules::kTlsMode, tlsPath / "mode",
                "unknown TLS mode " + inQuotes(tls["mode"].get<std::string>()) + "; use one of " +
                    joinModes(policy_.tlsModes));
    } else if (*mode == TlsMode::IstioMutual || *mode == TlsMode::AutoPassthrough) {
      violation(rules::kTlsMode, tlsPath / "mode",
                std::string(toString(*mode)) + " is never valid on sidecar ingress; use " +
                    joinModes(policy_.tlsModes) + " with certificates mounted into the proxy");
    } else if (!policy_.allowsTlsMode(*mode)) {
      violation(rules::kTlsMode, tlsPath / "mode",
                "mode " + std::string(toString(*mode)) +
                    (stringField(tls, "mode") ? "" : " (the default when mode is unset)") +
                    " is not allowed by the policy; use " + joinModes(policy_.tlsModes));
    }

    if (!l.protocol || (upper(*l.protocol) != "HTTPS" && upper(*l.protocol) != "TLS")) {
      violation(rules::kTlsPortProtocol, l.path / "port" / "protocol",
                (l.protocol ? "protocol " + inQuotes(*l.protocol) : std::string("no protocol")) +
                    " on a listener with tls; set port.protocol to HTTPS or TLS");
    }

    for (const char* field : {"subjectAltNames", "credentialNames", "tlsCertificates"}) {
      if (nonEmptyList(tls, field)) {
        violation(rules::kTlsUnsupportedField, tlsPath / field,
                  std::string(field) + " is not supported on sidecar ingress; remove it");
      }
    }
    if (stringField(tls, "credentialName")) {
      violation(rules::kTlsUnsupportedField, tlsPath / "credentialName",
                "credentialName is not supported on sidecar ingress; mount the certificate and "
                "set serverCertificate and privateKey instead");
    }
    if (auto it = tls.find("httpsRedirect");
        it != tls.end() && it->is_boolean() && it->get<bool>()) {
      violation(rules::kTlsUnsupportedField, tlsPath / "httpsRedirect",
                "httpsRedirect is not supported on sidecar ingress; remove it");
    }

    if (mode) credentials(*mode, tls, tlsPath);
    certificatePaths(tls, tlsPath);
    versions(tls, tlsPath);
    cipherSuites(tls, tlsPath);
    port(l);
  }

  void credentials(TlsMode mode, const json& tls, const Path& tlsPath) {
    bool terminates =
        mode == TlsMode::Simple || mode == TlsMode::Mutual || mode == TlsMode::OptionalMutual;
    if (terminates) {
      for (const char* field : {"serverCertificate", "privateKey"}) {
        if (!stringField(tls, field)) {
          violation(rules::kTlsCredentials, tlsPath / field,
                    std::string(toString(mode)) + " needs " + field +
                        ": the path of a file mounted into the proxy");
        }
      }
    }
    if ((mode == TlsMode::Mutual || mode == TlsMode::OptionalMutual) &&
        !stringField(tls, "caCertificates")) {
      violation(rules::kTlsCredentials, tlsPath / "caCertificates",
                std::string(toString(mode)) +
                    " needs caCertificates to verify client certificates; set the path of the CA "
                    "bundle mounted into the proxy");
    }
    if (mode == TlsMode::Simple && stringField(tls, "caCrl")) {
      violation(rules::kTlsCredentials, tlsPath / "caCrl",
                "caCrl has no effect with SIMPLE (no client certificates are checked); remove it "
                "or use MUTUAL");
    }
  }

  void certificatePaths(const json& tls, const Path& tlsPath) {
    for (const char* field : kTlsFileFields) {
      const std::string* file = stringField(tls, field);
      if (!file) continue;
      if ((*file)[0] != '/') {
        violation(rules::kTlsCertificatePath, tlsPath / field,
                  inQuotes(*file) +
                      " is not an absolute path; use the absolute path where the "
                      "file is mounted in the proxy");
      } else if (hasDotDotComponent(*file)) {
        violation(rules::kTlsCertificatePath, tlsPath / field,
                  inQuotes(*file) + " contains \"..\"; use a direct absolute path");
      } else if (policy_.certificatePaths &&
                 std::none_of(
                     policy_.certificatePaths->begin(), policy_.certificatePaths->end(),
                     [&](const std::string& prefix) { return pathUnder(*file, prefix); })) {
        std::string allowed;
        for (const auto& p : *policy_.certificatePaths)
          allowed += (allowed.empty() ? "" : ", ") + p;
        violation(rules::kTlsCertificatePath, tlsPath / field,
                  inQuotes(*file) + " is outside the allowed certificate folders (" + allowed +
                      "); mount the file under one of them");
      }
    }
  }

  void versions(const json& tls, const Path& tlsPath) {
    std::string minimum(toString(policy_.minTlsVersion));
    if (const std::string* min = stringField(tls, "minProtocolVersion")) {
      auto v = parseTlsVersion(*min);
      if (!v) {
        violation(rules::kTlsMinVersion, tlsPath / "minProtocolVersion",
                  "unknown TLS version " + inQuotes(*min) + "; use " + minimum + " or later");
      } else if (*v < policy_.minTlsVersion) {
        violation(
            rules::kTlsMinVersion, tlsPath / "minProtocolVersion",
            *min + " is below the policy minimum " + minimum + "; set " + minimum + " or later");
      }
    } else if (TlsVersion::V1_2 < policy_.minTlsVersion) {
      violation(
          rules::kTlsMinVersion, tlsPath / "minProtocolVersion",
          "unset, which means TLSV1_2, below the policy minimum " + minimum + "; set " + minimum);
    }
    if (const std::string* max = stringField(tls, "maxProtocolVersion")) {
      auto v = parseTlsVersion(*max);
      if (!v) {
        violation(rules::kTlsMinVersion, tlsPath / "maxProtocolVersion",
                  "unknown TLS version " + inQuotes(*max) + "; remove it or use " + minimum +
                      " or later");
      } else if (*max != "TLS_AUTO" && *v < policy_.minTlsVersion) {
        violation(rules::kTlsMinVersion, tlsPath / "maxProtocolVersion",
                  *max + " is below the policy minimum " + minimum +
                      "; remove maxProtocolVersion or raise it");
      }
    }
  }

  void cipherSuites(const json& tls, const Path& tlsPath) {
    if (policy_.cipherSuites.empty()) return;
    auto it = tls.find("cipherSuites");
    if (it == tls.end() || !it->is_array()) return;
    for (size_t i = 0; i < it->size(); ++i) {
      const json& suite = (*it)[i];
      if (!suite.is_string() || policy_.allowsCipherSuite(suite.get_ref<const std::string&>())) {
        continue;
      }
      std::string allowed;
      for (const auto& s : policy_.cipherSuites) allowed += (allowed.empty() ? "" : ", ") + s;
      violation(rules::kTlsCipherSuites, (tlsPath / "cipherSuites")[i],
                inQuotes(suite.get<std::string>()) + " is not an allowed cipher suite; use only " +
                    allowed);
    }
  }

  void port(const TlsListener& l) {
    Path path = l.path / "port" / "number";
    if (!l.portNumber) {
      violation(rules::kPortNotAllowed, path, "a listener with tls needs a port number");
      return;
    }
    long long n = *l.portNumber;
    if (n < 1 || n > 65535) {
      violation(rules::kPortNotAllowed, path, "port " + std::to_string(n) + " is outside 1..65535");
    } else if (isIstioReservedPort(n)) {
      violation(rules::kPortNotAllowed, path,
                "port " + std::to_string(n) +
                    " is reserved by Istio for the proxy itself; use an application port");
    } else if (!policy_.allowsPort(n)) {
      std::string allowed;
      for (const auto& r : *policy_.ports) {
        allowed += (allowed.empty() ? "" : ", ") +
                   (r.from == r.to ? std::to_string(r.from)
                                   : std::to_string(r.from) + "-" + std::to_string(r.to));
      }
      violation(rules::kPortNotAllowed, path,
                "port " + std::to_string(n) + " may not carry tls; the policy allows " + allowed);
    }
  }

 private:
  const Policy& policy_;
  Decision& decision_;
};

bool requesterAllowed(const Policy& policy, const UserInfo& user) {
  if (!policy.requestersSet) return true;
  if (policy.requesterUsers.matches(user.username)) return true;
  return std::any_of(user.groups.begin(), user.groups.end(),
                     [&](const std::string& g) { return policy.requesterGroups.matches(g); });
}

// Two selectors can match one pod together unless they require different values for a key.
bool selectorsCanOverlap(const Labels& a, const Labels& b) {
  for (const auto& [key, value] : a) {
    auto it = b.find(key);
    if (it != b.end() && it->second != value) return false;
  }
  return true;
}

// The holders of a namespace's slots: stored ones, then reserved ones (cluster mode) marked so.
std::string namesOf(const State& state, std::string_view ns) {
  std::vector<std::string> names;
  if (const auto* sidecars = state.inNamespace(ns)) {
    for (const auto& [name, s] : *sidecars) names.push_back(name);
  }
  if (const auto* reserved = state.reservedIn(ns)) {
    for (const auto& name : *reserved) names.push_back(name + " (reserved)");
  }
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i == 5) {
      out += ", …";
      break;
    }
    out += (out.empty() ? "" : ", ") + names[i];
  }
  return out;
}

}  // namespace

void checkSidecarRules(const SidecarView& sidecar, const AdmissionRequest& request,
                       const Policy& policy, const State& state, Decision& decision) {
  SidecarChecker check(policy, decision);
  Path nsPath = Path() / "metadata" / "namespace";
  std::optional<int> quota = policy.namespaceQuota(sidecar.namespace_);
  bool placeOk = true;
  if (sidecar.namespace_ == policy.meshRootNamespace) {
    placeOk = false;
    check.violation(rules::kMeshRootNamespace, nsPath,
                    "a hybrid Sidecar in the mesh root namespace " + inQuotes(sidecar.namespace_) +
                        " could apply to every namespace; create it in the namespace of the "
                        "workload it serves");
  } else if (!quota) {
    placeOk = false;
    check.violation(rules::kNamespaceNotAllowed, nsPath,
                    "hybrid mode is not allowed in namespace " + inQuotes(sidecar.namespace_) +
                        "; ask the platform team to add it to the policy's spec.namespaces");
  }
  if (!requesterAllowed(policy, request.user)) {
    std::string who =
        request.user.username.empty() ? "an anonymous user" : inQuotes(request.user.username);
    check.violation(rules::kRequesterNotAllowed, Path() / "metadata" / "name",
                    who +
                        " may not create or change hybrid Sidecars; ask a requester the "
                        "policy's spec.requesters lists");
  }
  if (policy.requireWorkloadSelector && !sidecar.selector) {
    check.violation(rules::kWorkloadSelectorRequired,
                    Path() / "spec" / "workloadSelector" / "labels",
                    "a hybrid Sidecar must select its workload; set spec.workloadSelector.labels "
                    "to the pod labels of that workload");
  }
  for (const auto& listener : sidecar.tlsListeners) check.listener(listener);

  if (placeOk && !state.counts(sidecar.namespace_, sidecar.name)) {
    size_t inNamespace = state.namespaceCount(sidecar.namespace_);
    if (*quota == 0) {
      check.violation(rules::kNamespaceQuotaExceeded, nsPath,
                      "namespace " + inQuotes(sidecar.namespace_) +
                          " allows no hybrid workloads (maxWorkloads: 0); raise maxWorkloads for "
                          "the namespace in the policy");
    } else if (inNamespace + 1 > static_cast<size_t>(*quota)) {
      std::string holders = namesOf(state, sidecar.namespace_);
      check.violation(rules::kNamespaceQuotaExceeded, nsPath,
                      "namespace " + inQuotes(sidecar.namespace_) + " already has " +
                          std::to_string(inNamespace) + " of its " + std::to_string(*quota) +
                          " hybrid workloads" + (holders.empty() ? "" : " (" + holders + ")") +
                          "; remove tls from one of them or raise maxWorkloads for the namespace");
    }
    if (state.total() + 1 > static_cast<size_t>(policy.clusterMaxWorkloads)) {
      check.violation(rules::kClusterQuotaExceeded, Path() / "metadata" / "name",
                      "the cluster already has " + std::to_string(state.total()) + " of its " +
                          std::to_string(policy.clusterMaxWorkloads) +
                          " hybrid workloads; remove tls from one or raise spec.maxWorkloads");
    }
  }

  if (const auto* others = state.inNamespace(sidecar.namespace_)) {
    for (const auto& [name, other] : *others) {
      if (name == sidecar.name) continue;
      bool overlap = (!sidecar.selector && !other.selector) ||
                     (sidecar.selector && other.selector &&
                      selectorsCanOverlap(*sidecar.selector, *other.selector));
      if (overlap) {
        decision.warnings.push_back(
            {rules::kSelectorOverlap, "spec.workloadSelector",
             "hybrid Sidecar " + inQuotes(name) +
                 " can select the same pods and Istio's choice between them is undefined; make "
                 "the workloadSelectors disjoint"});
      }
    }
  }
}

}  // namespace hybrid_guard::policy
