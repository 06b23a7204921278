#include "webhook/state_store.h"

#include <map>
#include <mutex>

#include "policy/finding.h"
#include "policy/sidecar_view.h"

namespace hybrid_guard::webhook {

namespace {

// An admitted hybrid Sidecar evaluated for a slot it does not hold yet (dry-run ones included:
// they are checked against the ledger too, never charged).
bool needsNewSlot(const policy::Decision& decision, const policy::State& state) {
  if (decision.subject != policy::Subject::Sidecar || !decision.evaluated || !decision.allowed) {
    return false;
  }
  for (const auto& v : decision.violations) {
    if (v.rule == policy::rules::kInvalidObject) return false;
  }
  return !state.find(decision.namespace_, decision.name);
}

}  // namespace

void StateStore::enableClusterMode(QuotaGate* gate) {
  gate_.store(gate);
}

policy::Decision StateStore::decide(const policy::AdmissionRequest& request,
                                    const policy::Policy& policy, policy::Phase phase,
                                    const ChangeObserver& onChange) {
  if (QuotaGate* gate = gate_.load()) {
    policy::State watched;
    policy::Decision local;
    {
      std::shared_lock lock(mutex_);
      local = policy::decide(request, policy, state_, phase);
      if (phase == policy::Phase::Mutate || !needsNewSlot(local, state_)) return local;
      watched = state_;
    }
    return gate->decideWithLedger(request, policy, std::move(watched), std::move(local));
  }
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

void StateStore::replaceAll(policy::State next, const ChangeObserver& onChange) {
  std::vector<std::pair<std::string, size_t>> before, after;
  {
    std::unique_lock lock(mutex_);
    before = state_.countsByNamespace();
    state_ = std::move(next);
    after = state_.countsByNamespace();
  }
  if (!onChange) return;
  std::map<std::string, size_t> counts;
  for (const auto& [ns, n] : before) counts[ns] = 0;
  for (const auto& [ns, n] : after) counts[ns] = n;
  for (const auto& [ns, n] : counts) onChange(ns, n);
}

void StateStore::upsertStored(policy::HybridSidecar sidecar, const ChangeObserver& onChange) {
  std::string ns = sidecar.namespace_;
  size_t count;
  {
    std::unique_lock lock(mutex_);
    state_.upsert(std::move(sidecar));
    count = state_.namespaceCount(ns);
  }
  if (onChange) onChange(ns, count);
}

void StateStore::removeStored(const std::string& ns, const std::string& name,
                              const ChangeObserver& onChange) {
  size_t count;
  {
    std::unique_lock lock(mutex_);
    if (!state_.remove(ns, name)) return;
    count = state_.namespaceCount(ns);
  }
  if (onChange) onChange(ns, count);
}

policy::State StateStore::snapshot() const {
  std::shared_lock lock(mutex_);
  return state_;
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
