#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "webhook/cluster_metrics.h"
#include "webhook/kube_client.h"
#include "webhook/state_store.h"

namespace hybrid_guard::webhook {

// namespace/name of a stored Sidecar.
using ObjectKey = std::pair<std::string, std::string>;

// Keeps the StateStore equal to the hybrid Sidecars the API server stores (DESIGN §8): discovers
// the preferred served version of networking.istio.io, lists Sidecars across namespaces (in
// pages), then watches from the list's resourceVersion with bookmarks. A 410 Gone relists; a
// failed or broken watch reconnects after a backoff (doubling, capped); a watch the server ends
// is resumed at once; a periodic relist repairs any drift. What is "hybrid" is decided by the
// engine's own Sidecar view, so the webhook and the watch never disagree about it.
class SidecarInformer {
 public:
  struct Options {
    std::chrono::milliseconds backoffMin{250};
    std::chrono::milliseconds backoffMax{30000};
    std::chrono::seconds watchTimeout{300};  // asked of the server; the client waits a bit more
    std::chrono::seconds relistInterval{600};
    std::chrono::milliseconds requestTimeout{30000};
    long long pageSize = 500;
  };
  struct Observer {
    // A Sidecar stored as hybrid went away (deleted, or lost its tls) at the given time.
    std::function<void(const ObjectKey& key, const std::string& uid,
                       std::chrono::system_clock::time_point when)>
        onGone;
    // After each list has been applied.
    std::function<void()> onListed;
  };

  SidecarInformer(KubeClient& client, StateStore& state, ClusterMetrics& metrics, EventLog log,
                  Options options, Observer observer = {}, StateStore::ChangeObserver onCount = {});
  ~SidecarInformer();
  SidecarInformer(const SidecarInformer&) = delete;
  SidecarInformer& operator=(const SidecarInformer&) = delete;

  void start();
  void stop();

  // True once the first list has been applied (and from then on).
  bool synced() const { return synced_.load(); }
  std::string version() const;
  // The Sidecars stored as hybrid, with their uids.
  std::map<ObjectKey, std::string> storedHybrid() const;

 private:
  enum class WatchEnd { Closed, Gone, Failed, Stopped, Relist };

  void run();
  bool discoverVersion();
  bool list(std::string& resourceVersion);
  WatchEnd watch(std::string& resourceVersion);
  bool handleEvent(const nlohmann::json& event, std::string& resourceVersion, WatchEnd& end);
  void apply(const std::string& type, const nlohmann::json& object);
  bool sleepFor(std::chrono::milliseconds duration);  // false when stopping
  std::string collectionPath() const;

  KubeClient& client_;
  StateStore& state_;
  ClusterMetrics& metrics_;
  EventLog log_;
  Options options_;
  Observer observer_;
  StateStore::ChangeObserver onCount_;

  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> synced_{false};
  std::mutex wakeMutex_;
  std::condition_variable wake_;
  mutable std::mutex mutex_;
  std::string version_;
  std::chrono::steady_clock::time_point listedAt_{};
  std::map<ObjectKey, std::string> hybrid_;  // stored hybrid Sidecars -> uid
};

}  // namespace hybrid_guard::webhook
