#include "policy/state.h"

namespace hybrid_guard::policy {

bool HybridSidecar::selects(const Labels& podLabels) const {
  if (!selector) return true;
  for (const auto& [key, value] : *selector) {
    auto it = podLabels.find(key);
    if (it == podLabels.end() || it->second != value) return false;
  }
  return true;
}

const HybridSidecar* State::find(std::string_view ns, std::string_view name) const {
  auto bucket = byNamespace_.find(std::string(ns));
  if (bucket == byNamespace_.end()) return nullptr;
  auto it = bucket->second.find(name);
  return it == bucket->second.end() ? nullptr : &it->second;
}

bool State::counts(std::string_view ns, std::string_view name) const {
  if (find(ns, name)) return true;
  const auto* reserved = reservedIn(ns);
  return reserved && reserved->count(name) > 0;
}

size_t State::namespaceCount(std::string_view ns) const {
  auto bucket = byNamespace_.find(std::string(ns));
  const auto* reserved = reservedIn(ns);
  return (bucket == byNamespace_.end() ? 0 : bucket->second.size()) +
         (reserved ? reserved->size() : 0);
}

void State::reserve(const std::string& ns, const std::string& name) {
  if (find(ns, name)) return;
  if (reserved_[ns].insert(name).second) ++reservedTotal_;
}

const std::set<std::string, std::less<>>* State::reservedIn(std::string_view ns) const {
  auto it = reserved_.find(std::string(ns));
  return it == reserved_.end() ? nullptr : &it->second;
}

const std::map<std::string, HybridSidecar, std::less<>>* State::inNamespace(
    std::string_view ns) const {
  auto bucket = byNamespace_.find(std::string(ns));
  return bucket == byNamespace_.end() ? nullptr : &bucket->second;
}

const HybridSidecar* State::selecting(std::string_view ns, const Labels& podLabels) const {
  const auto* sidecars = inNamespace(ns);
  if (!sidecars) return nullptr;
  const HybridSidecar* withoutSelector = nullptr;
  for (const auto& [name, sidecar] : *sidecars) {  // in name order: the first match wins ties
    if (!sidecar.selector) {
      if (!withoutSelector) withoutSelector = &sidecar;
    } else if (sidecar.selects(podLabels)) {
      return &sidecar;
    }
  }
  return withoutSelector;
}

void State::upsert(HybridSidecar sidecar) {
  if (auto reserved = reserved_.find(sidecar.namespace_); reserved != reserved_.end()) {
    if (reserved->second.erase(sidecar.name) > 0) --reservedTotal_;
    if (reserved->second.empty()) reserved_.erase(reserved);
  }
  auto& bucket = byNamespace_[sidecar.namespace_];
  auto it = bucket.find(sidecar.name);
  if (it == bucket.end()) {
    ++total_;
    std::string name = sidecar.name;
    bucket.emplace(std::move(name), std::move(sidecar));
  } else {
    it->second = std::move(sidecar);
  }
}

bool State::remove(std::string_view ns, std::string_view name) {
  auto bucket = byNamespace_.find(std::string(ns));
  if (bucket == byNamespace_.end()) return false;
  auto it = bucket->second.find(name);
  if (it == bucket->second.end()) return false;
  bucket->second.erase(it);
  --total_;
  if (bucket->second.empty()) byNamespace_.erase(bucket);
  return true;
}

std::vector<std::pair<std::string, size_t>> State::countsByNamespace() const {
  std::vector<std::pair<std::string, size_t>> out;
  out.reserve(byNamespace_.size());
  for (const auto& [ns, sidecars] : byNamespace_) out.emplace_back(ns, sidecars.size());
  return out;
}

void applyChange(State& state, const StateChange& change) {
  switch (change.kind) {
    case StateChange::Kind::None:
      break;
    case StateChange::Kind::Upsert:
      state.upsert(change.sidecar);
      break;
    case StateChange::Kind::Remove:
      state.remove(change.sidecar.namespace_, change.sidecar.name);
      break;
  }
}

}  // namespace hybrid_guard::policy
