#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hybrid_guard::policy {

using Labels = std::map<std::string, std::string, std::less<>>;

// One admitted hybrid Sidecar: what quotas count and what grants injection.
struct HybridSidecar {
  std::string namespace_;
  std::string name;
  std::optional<Labels> selector;  // nullopt: selects every pod of its namespace
  std::vector<std::string> certificatePaths;

  bool selects(const Labels& podLabels) const;
};

// The admitted hybrid Sidecars, indexed by namespace, plus quota reservations of objects not
// stored (yet): those count toward quotas but select nothing (DESIGN §2, §8). Pure data: callers
// that share it between threads guard it themselves.
class State {
 public:
  const HybridSidecar* find(std::string_view ns, std::string_view name) const;
  // Stored or reserved: already holds a slot.
  bool counts(std::string_view ns, std::string_view name) const;
  size_t namespaceCount(std::string_view ns) const;
  size_t total() const { return total_ + reservedTotal_; }

  // The Sidecar Istio would apply to a pod with these labels (DESIGN §2): one with a selector
  // over one without, ties broken by the smallest name; nullptr when none selects it.
  const HybridSidecar* selecting(std::string_view ns, const Labels& podLabels) const;

  // Every hybrid Sidecar of a namespace, by name.
  const std::map<std::string, HybridSidecar, std::less<>>* inNamespace(std::string_view ns) const;

  void upsert(HybridSidecar sidecar);
  bool remove(std::string_view ns, std::string_view name);

  // A reservation for namespace/name; ignored when that Sidecar is stored already, and taken
  // over by a later upsert of it (a slot is never counted twice).
  void reserve(const std::string& ns, const std::string& name);
  // The reserved-only names of a namespace, sorted; null when there are none.
  const std::set<std::string, std::less<>>* reservedIn(std::string_view ns) const;

  std::vector<std::pair<std::string, size_t>> countsByNamespace() const;

 private:
  std::unordered_map<std::string, std::map<std::string, HybridSidecar, std::less<>>> byNamespace_;
  std::unordered_map<std::string, std::set<std::string, std::less<>>> reserved_;
  size_t total_ = 0;
  size_t reservedTotal_ = 0;
};

// What a decision asks the caller to do to the state once the request is admitted.
struct StateChange {
  enum class Kind { None, Upsert, Remove };
  Kind kind = Kind::None;
  HybridSidecar sidecar;  // for Remove only namespace_ and name are set
};

void applyChange(State& state, const StateChange& change);

}  // namespace hybrid_guard::policy
