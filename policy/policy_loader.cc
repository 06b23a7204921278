#include <re2/re2.h>

#include <fstream>
#include <set>
#include <sstream>

#include "policy/object_shape.h"
#include "policy/path.h"
#include "policy/policy.h"

namespace hybrid_guard::policy {

namespace {

using nlohmann::json;

constexpr std::string_view kApiVersion = "hybrid-guard.io/v1alpha1";
constexpr std::string_view kKind = "HybridModePolicy";

// Walks the policy document, collecting every error with its line and field path.
class Loader {
 public:
  Loader(std::string file, const LineIndex& lines) : file_(std::move(file)), lines_(lines) {}

  std::vector<PolicyError> errors;

  void error(const std::string& pointer, const Path& path, std::string message) {
    errors.push_back({file_, lineOf(pointer), path.str(), std::move(message)});
  }

  // A field must be a map whose keys are all known.
  bool expectMap(const json& v, const std::string& ptr, const Path& path,
                 std::initializer_list<std::string_view> known) {
    if (!v.is_object()) {
      error(ptr, path, "must be a map, not " + jsonTypeName(v));
      return false;
    }
    for (const auto& [key, value] : v.items()) {
      bool ok = false;
      for (auto k : known) ok = ok || k == key;
      if (!ok) {
        std::string list;
        for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        error(ptr + "/" + escapeJsonPointerToken(key), path / key,
              "unknown field (known fields here: " + list + ")");
      }
    }
    return true;
  }

  std::optional<std::string> string(const json& v, const std::string& ptr, const Path& path) {
    if (!v.is_string()) {
      error(ptr, path, "must be a string, not " + jsonTypeName(v));
      return std::nullopt;
    }
    return v.get<std::string>();
  }

  std::optional<long long> integer(const json& v, const std::string& ptr, const Path& path) {
    if (!v.is_number_integer()) {
      error(ptr, path, "must be an integer, not " + jsonTypeName(v));
      return std::nullopt;
    }
    if (v.is_number_unsigned() && v.get<unsigned long long>() > 1'000'000'000ULL)
      return 1'000'000'000LL;
    return v.get<long long>();
  }

  std::optional<bool> boolean(const json& v, const std::string& ptr, const Path& path) {
    if (!v.is_boolean()) {
      error(ptr, path, "must be true or false, not " + jsonTypeName(v));
      return std::nullopt;
    }
    return v.get<bool>();
  }

  const json* list(const json& v, const std::string& ptr, const Path& path) {
    if (!v.is_array()) {
      error(ptr, path, "must be a list, not " + jsonTypeName(v));
      return nullptr;
    }
    return &v;
  }

  std::shared_ptr<const re2::RE2> pattern(const json& v, const std::string& ptr, const Path& path) {
    auto text = string(v, ptr, path);
    if (!text) return nullptr;
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<const re2::RE2>(*text, options);
    if (!re->ok()) {
      error(ptr, path, "invalid RE2 pattern \"" + *text + "\": " + re->error());
      return nullptr;
    }
    return re;
  }

  // A list entry that is either an exact name or {pattern: RE2} (plus extra allowed keys).
  struct NameEntry {
    std::optional<std::string> exact;
    std::shared_ptr<const re2::RE2> pattern;
    bool valid = false;
  };

  NameEntry nameEntry(const json& v, const std::string& ptr, const Path& path,
                      std::initializer_list<std::string_view> extraKeys, const char* exactKey) {
    NameEntry entry;
    if (v.is_string()) {
      entry.exact = v.get<std::string>();
      entry.valid = !entry.exact->empty();
      if (!entry.valid) error(ptr, path, "must not be empty");
      return entry;
    }
    if (!v.is_object()) {
      error(ptr, path, "must be a name or a map with \"pattern\", not " + jsonTypeName(v));
      return entry;
    }
    std::vector<std::string_view> known = {"pattern"};
    if (exactKey) known.push_back(exactKey);
    known.insert(known.end(), extraKeys.begin(), extraKeys.end());
    for (const auto& [key, value] : v.items()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string names;
        for (auto k : known) names += (names.empty() ? "" : ", ") + std::string(k);
        error(ptr + "/" + escapeJsonPointerToken(key), path / key,
              "unknown field (known fields here: " + names + ")");
      }
    }
    bool hasExact = exactKey && v.contains(exactKey);
    bool hasPattern = v.contains("pattern");
    if (hasExact == hasPattern) {
      error(ptr, path,
            exactKey ? std::string("needs exactly one of \"") + exactKey + "\" and \"pattern\""
                     : std::string("needs \"pattern\""));
      return entry;
    }
    if (hasExact) {
      auto name = string(v[exactKey], ptr + "/" + exactKey, path / exactKey);
      if (name && name->empty()) error(ptr + "/" + exactKey, path / exactKey, "must not be empty");
      if (name && !name->empty()) {
        entry.exact = *name;
        entry.valid = true;
      }
    } else {
      entry.pattern = pattern(v["pattern"], ptr + "/pattern", path / "pattern");
      entry.valid = entry.pattern != nullptr;
    }
    return entry;
  }

  NameMatcher nameList(const json& v, const std::string& ptr, const Path& path) {
    NameMatcher matcher;
    if (!list(v, ptr, path)) return matcher;
    std::set<std::string> seen;
    for (size_t i = 0; i < v.size(); ++i) {
      std::string p = ptr + "/" + std::to_string(i);
      auto entry = nameEntry(v[i], p, path[i], {}, nullptr);
      if (!entry.valid) continue;
      if (entry.exact) {
        if (!seen.insert(*entry.exact).second) {
          error(p, path[i], "\"" + *entry.exact + "\" is listed twice");
        }
        matcher.addExact(*entry.exact);
      } else {
        matcher.addPattern(entry.pattern);
      }
    }
    return matcher;
  }

  std::optional<int> quota(const json& v, const std::string& ptr, const Path& path) {
    auto n = integer(v, ptr, path);
    if (!n) return std::nullopt;
    if (*n < 0) {
      error(ptr, path, "must not be negative (0 allows no hybrid workload)");
      return std::nullopt;
    }
    if (*n > kMaxSupportedWorkloads) {
      error(ptr, path,
            "must be at most " + std::to_string(kMaxSupportedWorkloads) + " (the supported scale)");
      return std::nullopt;
    }
    return static_cast<int>(*n);
  }

  void load(const json& root, Policy& policy) {
    if (!expectMap(root, "", Path(), {"apiVersion", "kind", "metadata", "spec"})) return;
    Path none;
    if (!root.contains("apiVersion")) {
      error("", Path() / "apiVersion", "is required: " + std::string(kApiVersion));
    } else if (auto v = string(root["apiVersion"], "/apiVersion", none / "apiVersion");
               v && *v != kApiVersion) {
      error("/apiVersion", none / "apiVersion",
            "must be " + std::string(kApiVersion) + ", not \"" + *v + "\"");
    }
    if (!root.contains("kind")) {
      error("", none / "kind", "is required: " + std::string(kKind));
    } else if (auto v = string(root["kind"], "/kind", none / "kind"); v && *v != kKind) {
      error("/kind", none / "kind", "must be " + std::string(kKind) + ", not \"" + *v + "\"");
    }
    if (root.contains("metadata")) {
      const json& meta = root["metadata"];
      Path mp = none / "metadata";
      if (expectMap(meta, "/metadata", mp, {"name", "namespace", "labels", "annotations"})) {
        if (meta.contains("name")) {
          if (auto n = string(meta["name"], "/metadata/name", mp / "name")) policy.name = *n;
        }
      }
    }
    if (!root.contains("spec")) {
      error("", none / "spec", "is required");
      return;
    }
    loadSpec(root["spec"], policy);
  }

  void loadSpec(const json& spec, Policy& policy) {
    const std::string sp = "/spec";
    Path path = Path() / "spec";
    if (!expectMap(
            spec, sp, path,
            {"enforcement", "meshRootNamespace", "exemptNamespaces", "namespaces", "maxWorkloads",
             "requesters", "requireWorkloadSelector", "tls", "ports", "injection"})) {
      return;
    }
    if (spec.contains("enforcement")) {
      if (auto e = string(spec["enforcement"], sp + "/enforcement", path / "enforcement")) {
        if (*e == "deny") {
          policy.enforcement = Enforcement::Deny;
        } else if (*e == "warn") {
          policy.enforcement = Enforcement::Warn;
        } else if (*e == "dryrun") {
          policy.enforcement = Enforcement::DryRun;
        } else {
          error(sp + "/enforcement", path / "enforcement",
                "must be deny, warn or dryrun, not \"" + *e + "\"");
        }
      }
    }
    if (spec.contains("meshRootNamespace")) {
      auto ns =
          string(spec["meshRootNamespace"], sp + "/meshRootNamespace", path / "meshRootNamespace");
      if (ns && ns->empty()) {
        error(sp + "/meshRootNamespace", path / "meshRootNamespace", "must not be empty");
      } else if (ns) {
        policy.meshRootNamespace = *ns;
      }
    }
    if (spec.contains("exemptNamespaces")) {
      policy.exemptNamespaces =
          nameList(spec["exemptNamespaces"], sp + "/exemptNamespaces", path / "exemptNamespaces");
    }
    if (spec.contains("namespaces")) loadNamespaces(spec["namespaces"], policy);
    if (spec.contains("maxWorkloads")) {
      if (auto q = quota(spec["maxWorkloads"], sp + "/maxWorkloads", path / "maxWorkloads")) {
        policy.clusterMaxWorkloads = *q;
      }
    }
    if (spec.contains("requesters")) loadRequesters(spec["requesters"], policy);
    if (spec.contains("requireWorkloadSelector")) {
      if (auto b = boolean(spec["requireWorkloadSelector"], sp + "/requireWorkloadSelector",
                           path / "requireWorkloadSelector")) {
        policy.requireWorkloadSelector = *b;
      }
    }
    if (spec.contains("tls")) loadTls(spec["tls"], policy);
    if (spec.contains("ports")) loadPorts(spec["ports"], policy);
    if (spec.contains("injection")) {
      const json& inj = spec["injection"];
      Path ip = path / "injection";
      if (expectMap(inj, sp + "/injection", ip, {"enabled"}) && inj.contains("enabled")) {
        if (auto b = boolean(inj["enabled"], sp + "/injection/enabled", ip / "enabled")) {
          policy.injectionEnabled = *b;
        }
      }
    }
  }

  void loadNamespaces(const json& v, Policy& policy) {
    const std::string ptr = "/spec/namespaces";
    Path path = Path() / "spec" / "namespaces";
    if (!list(v, ptr, path)) return;
    for (size_t i = 0; i < v.size(); ++i) {
      std::string p = ptr + "/" + std::to_string(i);
      const json& item = v[i];
      auto entry = nameEntry(item, p, path[i], {"maxWorkloads"}, "name");
      int maxWorkloads = 1;
      if (item.is_object() && item.contains("maxWorkloads")) {
        auto q = quota(item["maxWorkloads"], p + "/maxWorkloads", path[i] / "maxWorkloads");
        if (!q) continue;
        maxWorkloads = *q;
      }
      if (!entry.valid) continue;
      if (entry.exact) {
        if (!policy.namespaceQuotas.emplace(*entry.exact, maxWorkloads).second) {
          error(p, path[i], "namespace \"" + *entry.exact + "\" is listed twice");
        }
      } else {
        policy.namespacePatterns.push_back({entry.pattern, maxWorkloads});
      }
    }
  }

  void loadRequesters(const json& v, Policy& policy) {
    const std::string ptr = "/spec/requesters";
    Path path = Path() / "spec" / "requesters";
    if (!expectMap(v, ptr, path, {"users", "groups"})) return;
    if (v.contains("users")) {
      policy.requesterUsers = nameList(v["users"], ptr + "/users", path / "users");
    }
    if (v.contains("groups")) {
      policy.requesterGroups = nameList(v["groups"], ptr + "/groups", path / "groups");
    }
    if (policy.requesterUsers.empty() && policy.requesterGroups.empty()) {
      error(ptr, path,
            "needs at least one user or group; remove \"requesters\" to let anyone RBAC allows");
    }
    policy.requestersSet = true;
  }

  void loadTls(const json& v, Policy& policy) {
    const std::string ptr = "/spec/tls";
    Path path = Path() / "spec" / "tls";
    if (!expectMap(v, ptr, path,
                   {"modes", "minProtocolVersion", "cipherSuites", "certificatePaths"})) {
      return;
    }
    if (v.contains("modes") && list(v["modes"], ptr + "/modes", path / "modes")) {
      const json& modes = v["modes"];
      if (modes.empty()) error(ptr + "/modes", path / "modes", "must not be empty");
      std::vector<TlsMode> parsed;
      for (size_t i = 0; i < modes.size(); ++i) {
        std::string p = ptr + "/modes/" + std::to_string(i);
        auto name = string(modes[i], p, (path / "modes")[i]);
        if (!name) continue;
        auto mode = parseTlsMode(*name);
        if (!mode) {
          error(p, (path / "modes")[i],
                "unknown TLS mode \"" + *name +
                    "\" (use PASSTHROUGH, SIMPLE, MUTUAL or OPTIONAL_MUTUAL)");
        } else if (*mode == TlsMode::IstioMutual || *mode == TlsMode::AutoPassthrough) {
          error(p, (path / "modes")[i],
                *name + " is never accepted on sidecar ingress; use SIMPLE or MUTUAL");
        } else {
          parsed.push_back(*mode);
        }
      }
      policy.tlsModes = parsed;
    }
    if (v.contains("minProtocolVersion")) {
      std::string p = ptr + "/minProtocolVersion";
      if (auto name = string(v["minProtocolVersion"], p, path / "minProtocolVersion")) {
        auto version = parseTlsVersion(*name);
        if (!version || *name == "TLS_AUTO") {
          error(p, path / "minProtocolVersion",
                "unknown TLS version \"" + *name + "\" (use TLSV1_0, TLSV1_1, TLSV1_2 or TLSV1_3)");
        } else {
          policy.minTlsVersion = *version;
        }
      }
    }
    if (v.contains("cipherSuites") &&
        list(v["cipherSuites"], ptr + "/cipherSuites", path / "cipherSuites")) {
      const json& suites = v["cipherSuites"];
      for (size_t i = 0; i < suites.size(); ++i) {
        auto s = string(suites[i], ptr + "/cipherSuites/" + std::to_string(i),
                        (path / "cipherSuites")[i]);
        if (s) policy.cipherSuites.push_back(*s);
      }
    }
    if (v.contains("certificatePaths") &&
        list(v["certificatePaths"], ptr + "/certificatePaths", path / "certificatePaths")) {
      const json& paths = v["certificatePaths"];
      if (paths.empty()) {
        error(ptr + "/certificatePaths", path / "certificatePaths",
              "must not be empty; remove it to allow any absolute path");
      }
      std::vector<std::string> prefixes;
      for (size_t i = 0; i < paths.size(); ++i) {
        std::string p = ptr + "/certificatePaths/" + std::to_string(i);
        auto s = string(paths[i], p, (path / "certificatePaths")[i]);
        if (!s) continue;
        if (s->empty() || (*s)[0] != '/') {
          error(p, (path / "certificatePaths")[i], "\"" + *s + "\" must be an absolute path");
        } else if (s->find("..") != std::string::npos) {
          error(p, (path / "certificatePaths")[i], "\"" + *s + "\" must not contain \"..\"");
        } else {
          prefixes.push_back(*s);
        }
      }
      policy.certificatePaths = prefixes;
    }
  }

  std::optional<int> port(const json& v, const std::string& ptr, const Path& path) {
    auto n = integer(v, ptr, path);
    if (!n) return std::nullopt;
    if (*n < 1 || *n > 65535) {
      error(ptr, path, "port " + std::to_string(*n) + " is outside 1..65535");
      return std::nullopt;
    }
    return static_cast<int>(*n);
  }

  void loadPorts(const json& v, Policy& policy) {
    const std::string ptr = "/spec/ports";
    Path path = Path() / "spec" / "ports";
    if (!list(v, ptr, path)) return;
    if (v.empty()) error(ptr, path, "must not be empty; remove it to allow any non-reserved port");
    std::vector<PortRange> ranges;
    for (size_t i = 0; i < v.size(); ++i) {
      std::string p = ptr + "/" + std::to_string(i);
      const json& item = v[i];
      PortRange range;
      if (item.is_object()) {
        if (!expectMap(item, p, path[i], {"from", "to"})) continue;
        if (!item.contains("from") || !item.contains("to")) {
          error(p, path[i], "a port range needs both \"from\" and \"to\"");
          continue;
        }
        auto from = port(item["from"], p + "/from", path[i] / "from");
        auto to = port(item["to"], p + "/to", path[i] / "to");
        if (!from || !to) continue;
        if (*from > *to) {
          error(p, path[i],
                "\"from\" " + std::to_string(*from) + " is above \"to\" " + std::to_string(*to));
          continue;
        }
        range = {*from, *to};
      } else {
        auto n = port(item, p, path[i]);
        if (!n) continue;
        range = {*n, *n};
      }
      bool reserved = false;
      for (int r : istioReservedPorts()) {
        if (r >= range.from && r <= range.to) {
          error(p, path[i],
                "port " + std::to_string(r) + " is reserved by Istio and cannot carry tls");
          reserved = true;
          break;
        }
      }
      if (!reserved) ranges.push_back(range);
    }
    policy.ports = ranges;
  }

 private:
  int lineOf(const std::string& pointer) const {
    // The line of the field itself, else of its nearest parent that has one.
    std::string p = pointer;
    while (true) {
      if (auto it = lines_.find(p); it != lines_.end()) return it->second;
      if (p.empty()) return 0;
      p = p.substr(0, p.rfind('/'));
    }
  }

  std::string file_;
  const LineIndex& lines_;
};

}  // namespace

PolicyResult loadPolicy(std::string_view text, std::string_view fileName) {
  ParseLimits limits;
  limits.maxBytes = 1024 * 1024;
  limits.lineDepth = limits.maxDepth;
  auto docs = parseDocuments(text, limits);
  std::string file(fileName);
  if (!docs) {
    return PolicyResult::failure({{file, docs.error().line, "", docs.error().message}});
  }
  if (docs->size() != 1) {
    return PolicyResult::failure(
        {{file, docs->size() > 1 ? (*docs)[1].line : 0, "",
          "a policy file holds exactly one HybridModePolicy document, found " +
              std::to_string(docs->size())}});
  }
  const Document& doc = docs->front();
  Loader loader(file, doc.lines);
  auto policy = std::make_shared<Policy>();
  loader.load(doc.value, *policy);
  if (!loader.errors.empty()) return PolicyResult::failure(std::move(loader.errors));
  return std::shared_ptr<const Policy>(std::move(policy));
}

PolicyResult loadPolicyFile(const std::string& fileName) {
  std::ifstream in(fileName, std::ios::binary);
  if (!in) return PolicyResult::failure({{fileName, 0, "", "cannot read the file"}});
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return loadPolicy(buffer.str(), fileName);
}

}  // namespace hybrid_guard::policy
