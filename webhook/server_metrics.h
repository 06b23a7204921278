#pragma once

#include <string>
#include <string_view>

#include "policy/policy.h"
#include "webhook/metrics.h"

namespace hybrid_guard::webhook {

// The metrics of DESIGN §6, every known series created at 0 so dashboards never see a gap.
class ServerMetrics {
 public:
  explicit ServerMetrics(const policy::Policy& initialPolicy);

  void countRequest(std::string_view endpoint, std::string_view kind, std::string_view operation,
                    std::string_view decision);
  void observeDuration(std::string_view endpoint, double seconds);
  void countViolation(std::string_view rule);
  void setHybridWorkloads(std::string_view ns, double count);
  void countPolicyReload(bool ok);
  void countCertificateReload(bool ok);
  void setCertificateExpiry(double unixSeconds);

  std::string render() const { return registry_.render(); }
  MetricsRegistry& registry() { return registry_; }

 private:
  MetricsRegistry registry_;
  CounterFamily& requests_;
  HistogramFamily& duration_;
  CounterFamily& violations_;
  GaugeFamily& workloads_;
  CounterFamily& policyReloads_;
  CounterFamily& certificateReloads_;
  GaugeFamily& certificateExpiry_;
};

}  // namespace hybrid_guard::webhook
