#include "webhook/cluster_metrics.h"

namespace hybrid_guard::webhook {

namespace {
constexpr const char* kEventTypes[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
constexpr const char* kRestartReasons[] = {"gone", "error", "closed", "relist"};
constexpr const char* kReserveResults[] = {"reserved", "refused", "unavailable"};
constexpr const char* kReleaseReasons[] = {"deleted", "expired"};
}  // namespace

ClusterMetrics::ClusterMetrics(MetricsRegistry& registry)
    : synced_(registry.gauge("hybrid_guard_cluster_state_synced",
                             "1 once the list+watch of Sidecars has been applied, else 0.")),
      watchEvents_(registry.counter("hybrid_guard_sidecar_watch_events_total",
                                    "Sidecar watch events received, by type.", {"type"})),
      watchRestarts_(registry.counter(
          "hybrid_guard_sidecar_watch_restarts_total",
          "Sidecar watches started again: gone (410, relisted), error (reconnected after a "
          "backoff), closed (ended by the server), relist (periodic recount).",
          {"reason"})),
      reservations_(registry.gauge("hybrid_guard_ledger_reservations",
                                   "Reservations in the quota ledger when last read or written.")),
      reserves_(registry.counter(
          "hybrid_guard_ledger_reserve_requests_total",
          "Admissions that needed a new quota slot: reserved, refused (quota seen full or another "
          "violation), unavailable (ledger unreadable, or conflicts until the deadline).",
          {"result"})),
      conflicts_(registry.counter("hybrid_guard_ledger_conflicts_total",
                                  "Ledger writes refused with 409 Conflict (then re-read).")),
      releases_(registry.counter("hybrid_guard_ledger_releases_total",
                                 "Reservations released: deleted (the Sidecar went away or lost "
                                 "tls), expired (not stored as hybrid within the grace period).",
                                 {"reason"})),
      repairs_(registry.counter("hybrid_guard_ledger_repairs_total",
                                "Hybrid Sidecars found stored but missing from the ledger (e.g. "
                                "created while the webhook was removed), added by the recount.")) {
  synced_.labels({});
  for (const char* type : kEventTypes) watchEvents_.labels({type});
  for (const char* reason : kRestartReasons) watchRestarts_.labels({reason});
  reservations_.labels({});
  for (const char* result : kReserveResults) reserves_.labels({result});
  conflicts_.labels({});
  for (const char* reason : kReleaseReasons) releases_.labels({reason});
  repairs_.labels({});
}

void ClusterMetrics::countWatchEvent(std::string_view type) {
  for (const char* known : kEventTypes) {
    if (type == known) {
      watchEvents_.labels({type}).inc();
      return;
    }
  }
}

void ClusterMetrics::countWatchRestart(std::string_view reason) {
  watchRestarts_.labels({reason}).inc();
}

void ClusterMetrics::countReserve(std::string_view result) {
  reserves_.labels({result}).inc();
}

void ClusterMetrics::countRelease(std::string_view reason, std::uint64_t n) {
  releases_.labels({reason}).inc(n);
}

}  // namespace hybrid_guard::webhook
