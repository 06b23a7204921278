#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "webhook/metrics.h"

namespace hybrid_guard::webhook {

// A structured log line of the cluster-state components: level, message, fields. The CLI routes
// it to its JSON log; tests collect it.
using EventLog = std::function<void(spdlog::level::level_enum level, const std::string& msg,
                                    const nlohmann::json& fields)>;

// The metrics of cluster mode (DESIGN §6, §8): watch health, ledger reservations, conflicts,
// releases and repairs. Every series exists from the start.
class ClusterMetrics {
 public:
  explicit ClusterMetrics(MetricsRegistry& registry);

  void setSynced(bool synced) { synced_.labels({}).set(synced ? 1 : 0); }
  void countWatchEvent(std::string_view type);
  void countWatchRestart(std::string_view reason);  // gone, error, closed, relist
  void setReservations(double count) { reservations_.labels({}).set(count); }
  void countReserve(std::string_view result);  // reserved, refused, unavailable
  void countConflict() { conflicts_.labels({}).inc(); }
  void countRelease(std::string_view reason, std::uint64_t n = 1);  // deleted, expired
  void countRepair(std::uint64_t n = 1) { repairs_.labels({}).inc(n); }

 private:
  GaugeFamily& synced_;
  CounterFamily& watchEvents_;
  CounterFamily& watchRestarts_;
  GaugeFamily& reservations_;
  CounterFamily& reserves_;
  CounterFamily& conflicts_;
  CounterFamily& releases_;
  CounterFamily& repairs_;
};

}  // namespace hybrid_guard::webhook
