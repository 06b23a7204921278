#include "webhook/state_store.h"

#include <mutex>

#include "policy/sidecar_view.h"

namespace hybrid_guard::webhook {

policy::Decision StateStore::decide(const policy::AdmissionRequest& request,
                                    const policy::Policy& policy, policy::Phase phase,
                                    const ChangeObserver& onChange) {
  bool mayChange = phase != policy::Phase::Mutate &&
                   policy::isSidecarKind(request.kind.group, request.kind.kind);
  if (!mayChange) {
    std::shared_lock lock(mutex_);
    return policy::decide(request, policy, state_, phase);
  }
  std::unique_lock lock(mutex_);
  policy::Decision decision = policy::decide(request, policy, state_, phase);
  if (decision.allowed && decision.change.kind != policy::StateChange::Kind::None) {
    policy::applyChange(state_, decision.change);
    if (onChange) {
      const std::string& ns = decision.change.sidecar.namespace_;
      onChange(ns, state_.namespaceCount(ns));
    }
  }
  return decision;
}

size_t StateStore::total() const {
  std::shared_lock lock(mutex_);
  return state_.total();
}

std::vector<std::pair<std::string, size_t>> StateStore::countsByNamespace() const {
  std::shared_lock lock(mutex_);
  return state_.countsByNamespace();
}

}  // namespace hybrid_guard::webhook
