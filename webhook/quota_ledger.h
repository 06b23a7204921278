#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "webhook/cluster_metrics.h"
#include "webhook/kube_client.h"
#include "webhook/sidecar_informer.h"
#include "webhook/state_store.h"

namespace hybrid_guard::webhook {

// The rule id of an admission the ledger could not decide (unreadable, or contended until the
// deadline): a violation in deny mode (fail closed), a warning otherwise (DESIGN §4, §8).
inline constexpr const char* kQuotaLedgerRule = "quota-ledger";

// One reservation: the first 8 hex digits of the object's uid ("" when unknown) and when it was
// made, in Unix milliseconds.
struct LedgerEntry {
  std::string uid;
  std::int64_t reservedAtMs = 0;
  bool operator==(const LedgerEntry&) const = default;
};

// The ledger ConfigMap's content. `data` has one key per namespace (namespace names are valid
// ConfigMap keys) holding one line per reservation, sorted by name: `<name> <uid8|-> <ms>`.
// About 40 bytes a reservation: 10,000 of them with names of 20 characters take ~400 KB, inside
// the 1 MiB object limit; a write that would pass `maxBytes` is refused (fail closed) instead.
struct Ledger {
  std::string resourceVersion;
  std::map<ObjectKey, LedgerEntry> entries;
  std::vector<std::string> malformed;  // lines that could not be read (dropped on next write)

  static Result<Ledger> fromConfigMap(const nlohmann::json& configMap);
  nlohmann::json data() const;
  size_t dataBytes() const;
  size_t countIn(const std::string& ns) const;
};

std::string shortUid(const std::string& uid);

struct LedgerOptions {
  std::string namespace_;
  std::string name = "hybrid-guard-ledger";
  std::chrono::milliseconds grace{30000};
  std::chrono::milliseconds deadline{2000};  // DESIGN §8: then the conflict message
  std::chrono::milliseconds reconcileInterval{5000};
  size_t maxBytes = 900 * 1024;
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

// Quota slots shared by every replica (DESIGN §8), the way ResourceQuota admission does it: a
// ConfigMap read, checked and written back with the resourceVersion that was read, re-read on
// 409 Conflict until the quota is seen full or the deadline nears. A reconciler releases the
// reservations of Sidecars that went away (promptly on the watch's word) or were never stored
// as hybrid within the grace period, and adds hybrid Sidecars stored without a reservation.
class QuotaLedger : public QuotaGate {
 public:
  // The stored hybrid Sidecars (namespace/name -> uid); nullopt until the watch has synced.
  using StoredView = std::function<std::optional<std::map<ObjectKey, std::string>>()>;

  QuotaLedger(KubeClient& client, StoredView stored, ClusterMetrics& metrics, EventLog log,
              LedgerOptions options);
  ~QuotaLedger() override;

  policy::Decision decideWithLedger(const policy::AdmissionRequest& request,
                                    const policy::Policy& policy, policy::State watched,
                                    policy::Decision local) override;

  // The watch saw a hybrid Sidecar go away: its reservation is released on the next pass.
  void noteGone(const ObjectKey& key, const std::string& uid,
                std::chrono::system_clock::time_point when);

  // One reconciliation pass (the background thread runs it every reconcileInterval, and soon
  // after noteGone).
  Status reconcileOnce();
  void start();
  void stop();

  Result<Ledger> read(std::chrono::milliseconds timeout);

 private:
  struct Gone {
    ObjectKey key;
    std::string uid;
    std::int64_t whenMs;
  };

  std::string path() const;
  Result<KubeResponse> write(const Ledger& ledger, nlohmann::json configMap,
                             std::chrono::milliseconds timeout);
  policy::Decision unavailable(policy::Decision local, const std::string& why);
  std::int64_t nowMs() const;

  KubeClient& client_;
  StoredView stored_;
  ClusterMetrics& metrics_;
  EventLog log_;
  LedgerOptions options_;

  std::mutex goneMutex_;
  std::vector<Gone> gone_;
  std::thread thread_;
  std::mutex wakeMutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool poked_ = false;
};

}  // namespace hybrid_guard::webhook
