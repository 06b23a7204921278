#include "policy/policy.h"

#include <re2/re2.h>

#include <algorithm>

namespace hybrid_guard::policy {

std::string_view toString(Enforcement e) {
  switch (e) {
    case Enforcement::Deny:
      return "deny";
    case Enforcement::Warn:
      return "warn";
    case Enforcement::DryRun:
      return "dryrun";
  }
  return "deny";
}

namespace {
struct ModeName {
  TlsMode mode;
  std::string_view name;
};
constexpr ModeName kModes[] = {
    {TlsMode::Passthrough, "PASSTHROUGH"},
    {TlsMode::Simple, "SIMPLE"},
    {TlsMode::Mutual, "MUTUAL"},
    {TlsMode::AutoPassthrough, "AUTO_PASSTHROUGH"},
    {TlsMode::IstioMutual, "ISTIO_MUTUAL"},
    {TlsMode::OptionalMutual, "OPTIONAL_MUTUAL"},
};
}  // namespace

std::optional<TlsMode> parseTlsMode(std::string_view name) {
  for (const auto& m : kModes) {
    if (m.name == name) return m.mode;
  }
  return std::nullopt;
}

std::string_view toString(TlsMode mode) {
  for (const auto& m : kModes) {
    if (m.mode == mode) return m.name;
  }
  return "PASSTHROUGH";
}

std::optional<TlsVersion> parseTlsVersion(std::string_view name) {
  if (name == "TLS_AUTO") return TlsVersion::V1_2;
  if (name == "TLSV1_0") return TlsVersion::V1_0;
  if (name == "TLSV1_1") return TlsVersion::V1_1;
  if (name == "TLSV1_2") return TlsVersion::V1_2;
  if (name == "TLSV1_3") return TlsVersion::V1_3;
  return std::nullopt;
}

std::string_view toString(TlsVersion v) {
  switch (v) {
    case TlsVersion::V1_0:
      return "TLSV1_0";
    case TlsVersion::V1_1:
      return "TLSV1_1";
    case TlsVersion::V1_2:
      return "TLSV1_2";
    case TlsVersion::V1_3:
      return "TLSV1_3";
  }
  return "TLSV1_2";
}

const std::vector<int>& istioReservedPorts() {
  static const std::vector<int> ports = {15000, 15001, 15004, 15006, 15008, 15009, 15010,
                                         15012, 15014, 15017, 15020, 15021, 15053, 15090};
  return ports;
}

bool isIstioReservedPort(long long port) {
  const auto& ports = istioReservedPorts();
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

NameMatcher::NameMatcher() = default;
NameMatcher::~NameMatcher() = default;
NameMatcher::NameMatcher(NameMatcher&&) noexcept = default;
NameMatcher& NameMatcher::operator=(NameMatcher&&) noexcept = default;

void NameMatcher::addExact(std::string name) {
  exact_.push_back(std::move(name));
}
void NameMatcher::addPattern(std::shared_ptr<const re2::RE2> pattern) {
  patterns_.push_back(std::move(pattern));
}

bool NameMatcher::matches(std::string_view name) const {
  for (const auto& e : exact_) {
    if (e == name) return true;
  }
  for (const auto& p : patterns_) {
    if (re2::RE2::FullMatch(re2::StringPiece(name.data(), name.size()), *p)) return true;
  }
  return false;
}

bool NameMatcher::empty() const {
  return exact_.empty() && patterns_.empty();
}

std::optional<int> Policy::namespaceQuota(std::string_view ns) const {
  if (auto it = namespaceQuotas.find(std::string(ns)); it != namespaceQuotas.end()) {
    return it->second;
  }
  for (const auto& entry : namespacePatterns) {
    if (re2::RE2::FullMatch(re2::StringPiece(ns.data(), ns.size()), *entry.pattern)) {
      return entry.maxWorkloads;
    }
  }
  return std::nullopt;
}

bool Policy::isExempt(std::string_view ns) const {
  if (ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease") return true;
  return exemptNamespaces.matches(ns);
}

bool Policy::allowsTlsMode(TlsMode mode) const {
  if (mode == TlsMode::IstioMutual || mode == TlsMode::AutoPassthrough) return false;
  return std::find(tlsModes.begin(), tlsModes.end(), mode) != tlsModes.end();
}

bool Policy::allowsPort(long long port) const {
  if (port < 1 || port > 65535 || isIstioReservedPort(port)) return false;
  if (!ports) return true;
  return std::any_of(ports->begin(), ports->end(),
                     [port](const PortRange& r) { return port >= r.from && port <= r.to; });
}

bool Policy::allowsCipherSuite(std::string_view suite) const {
  if (cipherSuites.empty()) return true;
  return std::find(cipherSuites.begin(), cipherSuites.end(), suite) != cipherSuites.end();
}

std::string PolicyError::str() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

std::shared_ptr<const Policy> defaultPolicy() {
  auto p = std::make_shared<Policy>();
  p->name = "built-in-default";
  return p;
}

}  // namespace hybrid_guard::policy
