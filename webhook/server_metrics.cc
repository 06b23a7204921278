#include "webhook/server_metrics.h"

#include "policy/finding.h"

namespace hybrid_guard::webhook {

namespace {

constexpr const char* kKinds[] = {"Sidecar",   "Pod",        "Deployment", "StatefulSet",
                                  "DaemonSet", "ReplicaSet", "Job",        "CronJob"};
constexpr const char* kOperations[] = {"CREATE", "UPDATE", "DELETE"};
constexpr const char* kDecisions[] = {"allow", "deny", "warn", "error"};
constexpr const char* kRules[] = {policy::rules::kMeshRootNamespace,
                                  policy::rules::kNamespaceNotAllowed,
                                  policy::rules::kRequesterNotAllowed,
                                  policy::rules::kWorkloadSelectorRequired,
                                  policy::rules::kTlsMode,
                                  policy::rules::kTlsPortProtocol,
                                  policy::rules::kTlsUnsupportedField,
                                  policy::rules::kTlsCredentials,
                                  policy::rules::kTlsCertificatePath,
                                  policy::rules::kTlsMinVersion,
                                  policy::rules::kTlsCipherSuites,
                                  policy::rules::kPortNotAllowed,
                                  policy::rules::kNamespaceQuotaExceeded,
                                  policy::rules::kClusterQuotaExceeded,
                                  policy::rules::kHybridFlagUnapproved,
                                  policy::rules::kInvalidObject};

}  // namespace

ServerMetrics::ServerMetrics(const policy::Policy& initialPolicy)
    : requests_(registry_.counter("hybrid_guard_admission_requests_total",
                                  "Admission requests by endpoint, kind, operation and decision.",
                                  {"endpoint", "kind", "operation", "decision"})),
      duration_(registry_.histogram("hybrid_guard_admission_duration_seconds",
                                    "Time from a whole request body to the encoded answer.",
                                    {"endpoint"})),
      violations_(registry_.counter("hybrid_guard_rule_violations_total",
                                    "Rule violations found, in every enforcement mode.", {"rule"})),
      workloads_(registry_.gauge("hybrid_guard_hybrid_workloads",
                                 "Hybrid workloads (admitted hybrid Sidecars) per namespace.",
                                 {"namespace"})),
      policyReloads_(registry_.counter("hybrid_guard_policy_reloads_total",
                                       "Policy file reloads by result.", {"result"})),
      certificateReloads_(registry_.counter("hybrid_guard_certificate_reloads_total",
                                            "Serving certificate reloads by result.", {"result"})),
      certificateExpiry_(registry_.gauge("hybrid_guard_certificate_expiry_timestamp_seconds",
                                         "notAfter of the serving certificate, Unix seconds.")) {
  for (const char* decision : kDecisions) {
    for (const char* kind : kKinds) {
      for (const char* op : kOperations) requests_.labels({"validate", kind, op, decision});
    }
    requests_.labels({"mutate", "Pod", "CREATE", decision});
  }
  for (const char* endpoint : {"validate", "mutate"}) {
    requests_.labels({endpoint, "unknown", "unknown", "error"});
    duration_.labels({endpoint});
  }
  for (const char* rule : kRules) violations_.labels({rule});
  for (const auto& [ns, quota] : initialPolicy.namespaceQuotas) workloads_.labels({ns});
  for (const char* result : {"success", "failure"}) {
    policyReloads_.labels({result});
    certificateReloads_.labels({result});
  }
  certificateExpiry_.labels({});
}

void ServerMetrics::countRequest(std::string_view endpoint, std::string_view kind,
                                 std::string_view operation, std::string_view decision) {
  requests_.labels({endpoint, kind, operation, decision}).inc();
}

void ServerMetrics::observeDuration(std::string_view endpoint, double seconds) {
  duration_.labels({endpoint}).observe(seconds);
}

void ServerMetrics::countViolation(std::string_view rule) {
  violations_.labels({rule}).inc();
}

void ServerMetrics::setHybridWorkloads(std::string_view ns, double count) {
  workloads_.labels({ns}).set(count);
}

void ServerMetrics::countPolicyReload(bool ok) {
  policyReloads_.labels({ok ? "success" : "failure"}).inc();
}

void ServerMetrics::countCertificateReload(bool ok) {
  certificateReloads_.labels({ok ? "success" : "failure"}).inc();
}

void ServerMetrics::setCertificateExpiry(double unixSeconds) {
  certificateExpiry_.labels({}).set(unixSeconds);
}

}  // namespace hybrid_guard::webhook
