#pragma once

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

// The local state, fed by the admission stream. Requests that may change it (Sidecars) decide and
// apply under one exclusive lock, so two concurrent CREATEs cannot both take the last slot;
// everything else reads under a shared lock.
class StateStore {
 public:
  using ChangeObserver = std::function<void(const std::string& ns, size_t count)>;

  StateStore() = default;
  explicit StateStore(policy::State seed) : state_(std::move(seed)) {}

  policy::Decision decide(const policy::AdmissionRequest& request, const policy::Policy& policy,
                          policy::Phase phase, const ChangeObserver& onChange = {});

  size_t total() const;
  std::vector<std::pair<std::string, size_t>> countsByNamespace() const;

 private:
  mutable std::shared_mutex mutex_;
  policy::State state_;
};

}  // namespace hybrid_guard::webhook
