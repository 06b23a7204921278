#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "policy/decision.h"
#include "policy/policy.h"
#include "policy/state.h"

namespace hybrid_guard::webhook {

// The policy in use: swapped whole on reload, so a request never sees a half-loaded policy.
class PolicyHolder {
 public:
  explicit PolicyHolder(std::shared_ptr<const policy::Policy> initial)
      : current_(std::move(initial)) {}
  // A mutex around the pointer copy rather than std::atomic<std::shared_ptr>: libstdc++ 12's
  // atomic<shared_ptr> is reported racy by TSan, and the lock is held only for a refcount bump.
  std::shared_ptr<const policy::Policy> get() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  void set(std::shared_ptr<const policy::Policy> next) {
    std::lock_guard lock(mutex_);
    current_.swap(next);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const policy::Policy> current_;
};

// Cluster mode (DESIGN §8): decides a Sidecar validation that needs a new quota slot against the
// watched state plus the replicas' shared ledger, and reserves the slot there.
class QuotaGate {
 public:
  virtual ~QuotaGate() = default;
  // `watched` is a copy of the watched state; `local` what it alone decided (admitted).
  virtual policy::Decision decideWithLedger(const policy::AdmissionRequest& request,
                                            const policy::Policy& policy, policy::State watched,
                                            policy::Decision local) = 0;
};

// The state the engine decides from. Locally it is fed by the admission stream: requests that may
// change it (Sidecars) decide and apply under one exclusive lock, so two concurrent CREATEs cannot
// both take the last slot; everything else reads under a shared lock. In cluster mode it is fed
// by the Sidecar watch only (replaceAll/upsertStored/removeStored), admissions never change it,
// and quota slots are taken through the QuotaGate.
class StateStore {
 public:
  using ChangeObserver = std::function<void(const std::string& ns, size_t count)>;

  StateStore() = default;
  explicit StateStore(policy::State seed) : state_(std::move(seed)) {}

  // From now on the state follows the watch and new slots go through `gate` (which outlives it).
  void enableClusterMode(QuotaGate* gate);

  policy::Decision decide(const policy::AdmissionRequest& request, const policy::Policy& policy,
                          policy::Phase phase, const ChangeObserver& onChange = {});

  // The watch's view: a whole list, or one stored Sidecar added, changed or gone. The observer
  // hears the new count of every namespace that changed (0 for one that emptied).
  void replaceAll(policy::State next, const ChangeObserver& onChange = {});
  void upsertStored(policy::HybridSidecar sidecar, const ChangeObserver& onChange = {});
  void removeStored(const std::string& ns, const std::string& name,
                    const ChangeObserver& onChange = {});

  size_t total() const;
  std::vector<std::pair<std::string, size_t>> countsByNamespace() const;
  policy::State snapshot() const;

 private:
  mutable std::shared_mutex mutex_;
  policy::State state_;
  std::atomic<QuotaGate*> gate_{nullptr};
};

}  // namespace hybrid_guard::webhook
