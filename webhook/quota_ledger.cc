#include "webhook/quota_ledger.h"

#include <algorithm>
#include <sstream>

#include "policy/decision.h"

namespace hybrid_guard::webhook {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

bool isHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

bool isDnsName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

std::string objectUid(const policy::AdmissionRequest& request) {
  const json* object = request.object;
  if (!object || !object->is_object()) return {};
  auto metadata = object->find("metadata");
  if (metadata == object->end() || !metadata->is_object()) return {};
  auto uid = metadata->find("uid");
  return uid != metadata->end() && uid->is_string() ? uid->get<std::string>() : std::string();
}

std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(100));
}

}  // namespace

std::string shortUid(const std::string& uid) {
  std::string prefix = uid.substr(0, 8);
  return prefix.size() == 8 && isHex(prefix) ? prefix : std::string();
}

Result<Ledger> Ledger::fromConfigMap(const json& configMap) {
  if (!configMap.is_object() || !configMap.contains("metadata") ||
      !configMap["metadata"].is_object()) {
    return Result<Ledger>::failure("the ledger is not a ConfigMap");
  }
  Ledger ledger;
  const json& metadata = configMap["metadata"];
  if (metadata.contains("resourceVersion") && metadata["resourceVersion"].is_string()) {
    ledger.resourceVersion = metadata["resourceVersion"].get<std::string>();
  }
  if (ledger.resourceVersion.empty()) {
    return Result<Ledger>::failure("the ledger ConfigMap has no resourceVersion");
  }
  auto data = configMap.find("data");
  if (data == configMap.end() || data->is_null()) return Result<Ledger>::success(std::move(ledger));
  if (!data->is_object()) return Result<Ledger>::failure("the ledger's data is not a map");
  for (const auto& [ns, value] : data->items()) {
    if (!value.is_string() || !isDnsName(ns)) {
      ledger.malformed.push_back(ns);
      continue;
    }
    std::istringstream lines(value.get<std::string>());
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      std::istringstream fields(line);
      std::string name, uid, at, extra;
      fields >> name >> uid >> at;
      bool ok = !name.empty() && isDnsName(name) &&
                (uid == "-" || (uid.size() == 8 && isHex(uid))) && !at.empty() && at.size() <= 15 &&
                at.find_first_not_of("0123456789") == std::string::npos && !(fields >> extra);
      if (!ok) {
        ledger.malformed.push_back(ns + ": " + line);
        continue;
      }
      ledger.entries[{ns, name}] = {uid == "-" ? std::string() : uid, std::stoll(at)};
    }
  }
  return Result<Ledger>::success(std::move(ledger));
}

json Ledger::data() const {
  json data = json::object();
  std::string currentNs, lines;
  auto flush = [&] {
    if (!currentNs.empty()) data[currentNs] = lines;
  };
  for (const auto& [key, entry] : entries) {
    if (key.first != currentNs) {
      flush();
      currentNs = key.first;
      lines.clear();
    }
    lines += key.second + " " + (entry.uid.empty() ? "-" : entry.uid) + " " +
             std::to_string(entry.reservedAtMs) + "\n";
  }
  flush();
  return data;
}

size_t Ledger::dataBytes() const {
  return data().dump().size();
}

size_t Ledger::countIn(const std::string& ns) const {
  auto first = entries.lower_bound({ns, ""});
  size_t n = 0;
  for (auto it = first; it != entries.end() && it->first.first == ns; ++it) ++n;
  return n;
}

QuotaLedger::QuotaLedger(KubeClient& client, StoredView stored, ClusterMetrics& metrics,
                         EventLog log, LedgerOptions options)
    : client_(client),
      stored_(std::move(stored)),
      metrics_(metrics),
      log_(std::move(log)),
      options_(std::move(options)) {}

QuotaLedger::~QuotaLedger() {
  stop();
}

std::string QuotaLedger::path() const {
  return "/api/v1/namespaces/" + options_.namespace_ + "/configmaps/" + options_.name;
}

std::int64_t QuotaLedger::nowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(options_.now().time_since_epoch())
      .count();
}

Result<Ledger> QuotaLedger::read(std::chrono::milliseconds timeout) {
  auto response = client_.get(path(), timeout);
  if (!response) return Result<Ledger>::failure(response.error());
  const KubeResponse& r = response.value();
  if (r.status == 404) {
    return Result<Ledger>::failure("the ledger ConfigMap " + options_.namespace_ + "/" +
                                   options_.name + " does not exist (it ships with manifests/)");
  }
  if (!r.ok()) {
    return Result<Ledger>::failure("reading the ledger ConfigMap " + options_.namespace_ + "/" +
                                   options_.name + ": HTTP " + std::to_string(r.status) + ": " +
                                   r.message());
  }
  json configMap = json::parse(r.body, nullptr, false);
  return Ledger::fromConfigMap(configMap);
}

Result<KubeResponse> QuotaLedger::write(const Ledger& ledger, json configMap,
                                        std::chrono::milliseconds timeout) {
  configMap["data"] = ledger.data();
  configMap["metadata"]["resourceVersion"] = ledger.resourceVersion;
  configMap["apiVersion"] = "v1";
  configMap["kind"] = "ConfigMap";
  return client_.put(path(), configMap.dump(), timeout);
}

policy::Decision QuotaLedger::unavailable(policy::Decision local, const std::string& why) {
  local.change = {};
  policy::Finding finding{kQuotaLedgerRule, "metadata.name", why};
  if (local.enforcement == policy::Enforcement::Deny) {
    local.violations.push_back(std::move(finding));
    local.allowed = false;
  } else {
    local.warnings.push_back(std::move(finding));
  }
  metrics_.countReserve("unavailable");
  log_(spdlog::level::warn, "quota slot undecided",
       {{"namespace", local.namespace_}, {"name", local.name}, {"error", why}});
  return local;
}

policy::Decision QuotaLedger::decideWithLedger(const policy::AdmissionRequest& request,
                                               const policy::Policy& policy, policy::State watched,
                                               policy::Decision local) {
  auto deadline = std::chrono::steady_clock::now() + options_.deadline;
  const std::string where = options_.namespace_ + "/" + options_.name;
  if (!stored_()) {
    return unavailable(std::move(local),
                       "hybrid-guard has not synced the cluster's Sidecars yet, so quotas cannot "
                       "be checked; retry in a moment");
  }
  std::string uid = shortUid(objectUid(request));
  int conflicts = 0;
  for (;;) {
    auto configMap = client_.get(path(), remaining(deadline));
    if (!configMap) {
      return unavailable(std::move(local), "cannot read the quota ledger " + where + ": " +
                                               configMap.error() + "; retry");
    }
    if (!configMap.value().ok()) {
      return unavailable(std::move(local), "cannot read the quota ledger " + where + ": HTTP " +
                                               std::to_string(configMap.value().status) + ": " +
                                               configMap.value().message());
    }
    json object = json::parse(configMap.value().body, nullptr, false);
    auto ledger = Ledger::fromConfigMap(object);
    if (!ledger) {
      return unavailable(std::move(local),
                         "cannot read the quota ledger " + where + ": " + ledger.error());
    }
    policy::State effective = watched;
    for (const auto& [key, entry] : ledger.value().entries)
      effective.reserve(key.first, key.second);
    policy::Decision decision = policy::decide(request, policy, effective, policy::Phase::Validate);
    metrics_.setReservations(static_cast<double>(ledger.value().entries.size()));
    if (request.dryRun) return decision;  // evaluated against the ledger, never charged
    if (decision.change.kind != policy::StateChange::Kind::Upsert) {
      metrics_.countReserve("refused");
      log_(spdlog::level::info, "quota slot refused",
           {{"namespace", decision.namespace_},
            {"name", decision.name},
            {"reservations", ledger.value().entries.size()},
            {"conflicts", conflicts}});
      return decision;
    }
    ObjectKey key{decision.change.sidecar.namespace_, decision.change.sidecar.name};
    Ledger next = std::move(ledger.value());
    if (auto it = next.entries.find(key); it != next.entries.end() && it->second.uid == uid) {
      return decision;  // reserved already: a retried request
    }
    next.entries[key] = {uid, nowMs()};
    if (next.dataBytes() > options_.maxBytes) {
      return unavailable(std::move(local), "the quota ledger " + where + " is full (" +
                                               std::to_string(next.entries.size()) +
                                               " reservations); see the webhook log");
    }
    auto written = write(next, std::move(object), remaining(deadline));
    if (!written) {
      return unavailable(std::move(local), "cannot update the quota ledger " + where + ": " +
                                               written.error() + "; retry");
    }
    const KubeResponse& r = written.value();
    if (r.ok()) {
      metrics_.countReserve("reserved");
      metrics_.setReservations(static_cast<double>(next.entries.size()));
      log_(spdlog::level::info, "quota slot reserved",
           {{"namespace", key.first},
            {"name", key.second},
            {"uid", uid},
            {"conflicts", conflicts},
            {"reservations", next.entries.size()}});
      return decision;
    }
    if (r.status != 409) {
      return unavailable(std::move(local), "cannot update the quota ledger " + where + ": HTTP " +
                                               std::to_string(r.status) + ": " + r.message());
    }
    ++conflicts;
    metrics_.countConflict();
    if (std::chrono::steady_clock::now() + 50ms >= deadline) {
      return unavailable(
          std::move(local),
          "the quota ledger " + where + " stayed contended for " +
              std::to_string(options_.deadline.count()) + " ms (" + std::to_string(conflicts) +
              " conflicting updates by other requests), so the quota could not be checked; retry");
    }
  }
}

void QuotaLedger::noteGone(const ObjectKey& key, const std::string& uid,
                           std::chrono::system_clock::time_point when) {
  {
    std::lock_guard lock(goneMutex_);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
    gone_.push_back({key, shortUid(uid), ms});
  }
  {
    std::lock_guard lock(wakeMutex_);
    poked_ = true;
  }
  wake_.notify_all();
}

Status QuotaLedger::reconcileOnce() {
  auto stored = stored_();
  if (!stored) return Status::success();  // nothing is known to compare with yet
  std::vector<Gone> gone;
  {
    std::lock_guard lock(goneMutex_);
    gone = gone_;
  }
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto configMap = client_.get(path(), 10s);
    if (!configMap) return Status::failure(configMap.error());
    if (!configMap.value().ok()) {
      return Status::failure("reading the ledger: HTTP " +
                             std::to_string(configMap.value().status) + ": " +
                             configMap.value().message());
    }
    json object = json::parse(configMap.value().body, nullptr, false);
    auto read = Ledger::fromConfigMap(object);
    if (!read) return Status::failure(read.error());
    Ledger ledger = std::move(read.value());
    std::int64_t now = nowMs();
    struct Change {
      ObjectKey key;
      std::string what;  // deleted, expired, repaired
      std::string uid;
    };
    std::vector<Change> changes;
    bool rewrite = !ledger.malformed.empty();
    for (auto it = ledger.entries.begin(); it != ledger.entries.end();) {
      // Not a structured binding: clang 14 (the sanitizer build) cannot capture one in a lambda.
      const auto& key = it->first;
      const auto& entry = it->second;
      if (auto s = stored->find(key); s != stored->end()) {
        std::string storedUid = shortUid(s->second);
        if (!storedUid.empty() && storedUid != entry.uid) {
          it->second.uid = storedUid;  // a new incarnation took the name over
          rewrite = true;
        }
        ++it;
        continue;
      }
      bool deleted = std::any_of(gone.begin(), gone.end(), [&](const Gone& g) {
        return g.key == key && (entry.uid.empty() || g.uid == entry.uid) &&
               g.whenMs > entry.reservedAtMs;
      });
      bool expired = now - entry.reservedAtMs >= options_.grace.count();
      if (deleted || expired) {
        changes.push_back({key, deleted ? "deleted" : "expired", entry.uid});
        it = ledger.entries.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [key, uid] : *stored) {
      if (!ledger.entries.count(key)) {
        ledger.entries[key] = {shortUid(uid), now};
        changes.push_back({key, "repaired", shortUid(uid)});
      }
    }
    if (changes.empty() && !rewrite) {
      metrics_.setReservations(static_cast<double>(ledger.entries.size()));
      break;
    }
    auto written = write(ledger, std::move(object), 10s);
    if (!written) return Status::failure(written.error());
    if (written.value().status == 409) {
      metrics_.countConflict();
      continue;
    }
    if (!written.value().ok()) {
      return Status::failure("updating the ledger: HTTP " + std::to_string(written.value().status) +
                             ": " + written.value().message());
    }
    metrics_.setReservations(static_cast<double>(ledger.entries.size()));
    for (const auto& line : ledger.malformed) {
      log_(spdlog::level::warn, "dropped an unreadable ledger line", {{"line", line}});
    }
    for (const auto& c : changes) {
      if (c.what == "repaired") {
        metrics_.countRepair();
        log_(spdlog::level::info, "ledger recount: stored hybrid Sidecar had no reservation; added",
             {{"namespace", c.key.first}, {"name", c.key.second}, {"uid", c.uid}});
      } else {
        metrics_.countRelease(c.what);
        log_(spdlog::level::info,
             c.what == "deleted" ? "reservation released: the Sidecar went away"
                                 : "reservation released: not stored as hybrid within the grace "
                                   "period",
             {{"namespace", c.key.first},
              {"name", c.key.second},
              {"uid", c.uid},
              {"reason", c.what},
              {"reservations", ledger.entries.size()}});
      }
    }
    break;
  }
  // Forget what has been handled, and anything too old to matter.
  std::lock_guard lock(goneMutex_);
  std::int64_t oldest = nowMs() - std::max<std::int64_t>(options_.grace.count() * 4, 600000);
  std::erase_if(gone_, [&](const Gone& g) {
    return g.whenMs < oldest || std::any_of(gone.begin(), gone.end(), [&](const Gone& h) {
             return h.key == g.key && h.uid == g.uid && h.whenMs == g.whenMs;
           });
  });
  return Status::success();
}

void QuotaLedger::start() {
  thread_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock lock(wakeMutex_);
        wake_.wait_for(lock, options_.reconcileInterval, [this] { return stopping_ || poked_; });
        if (stopping_) return;
        poked_ = false;
      }
      if (auto s = reconcileOnce(); !s) {
        log_(spdlog::level::warn, "ledger reconciliation failed; next pass retries",
             {{"error", s.error()}});
      }
    }
  });
}

void QuotaLedger::stop() {
  {
    std::lock_guard lock(wakeMutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace hybrid_guard::webhook
