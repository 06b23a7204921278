#include "webhook/admission_service.h"

#include <chrono>
#include <ctime>

#include "webhook/admission_codec.h"
#include "webhook/timestamp.h"

namespace hybrid_guard::webhook {

using nlohmann::json;

namespace {

// Label values are bounded: a hostile request cannot grow the metrics without limit.
std::string_view kindLabel(std::string_view kind) {
  for (std::string_view known : {"Sidecar", "Pod", "Deployment", "StatefulSet", "DaemonSet",
                                 "ReplicaSet", "Job", "CronJob"}) {
    if (kind == known) return known;
  }
  return "other";
}

std::string_view operationLabel(policy::Operation op) {
  return policy::toString(op);
}

HttpResponse badRequest(const std::string& message) {
  return {400, json{{"error", message}}.dump()};
}

}  // namespace

AdmissionService::AdmissionService(const PolicyHolder& policy, StateStore& state,
                                   ServerMetrics& metrics, DecisionLogger log)
    : policy_(policy), state_(state), metrics_(metrics), log_(std::move(log)) {}

HttpResponse AdmissionService::handle(Endpoint endpoint, std::string_view body) {
  auto started = std::chrono::steady_clock::now();
  std::string_view endpointLabel = endpointName(endpoint);
  DecisionRecord record;
  record.endpoint = endpointLabel;
  auto finish = [&](HttpResponse response) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics_.observeDuration(endpointLabel, seconds);
    record.latencyMicros = static_cast<long long>(seconds * 1e6);
    if (log_) log_(record);
    return response;
  };

  auto review = std::make_unique<DecodedReview>();
  if (auto error = decodeAdmissionReview(body, *review)) {
    metrics_.countRequest(endpointLabel, "unknown", "unknown", "error");
    record.decision = "error";
    record.error = error->message;
    return finish(badRequest(error->message));
  }
  const policy::AdmissionRequest& request = review->request;
  record.uid = request.uid;
  record.kind = request.kind.kind;
  record.operation = std::string(operationLabel(request.operation));
  record.user = request.user.username;

  std::shared_ptr<const policy::Policy> policy = policy_.get();
  policy::Phase phase =
      endpoint == Endpoint::Mutate ? policy::Phase::Mutate : policy::Phase::Validate;
  policy::Decision decision =
      state_.decide(request, *policy, phase, [this](const std::string& ns, size_t count) {
        metrics_.setHybridWorkloads(ns, static_cast<double>(count));
      });

  record.namespace_ = decision.namespace_;
  record.name = decision.name;
  record.decision = decision.outcome();
  for (const auto& v : decision.violations) {
    record.rules.push_back(v.rule);
    metrics_.countViolation(v.rule);
  }
  for (const auto& w : decision.warnings) record.rules.push_back(w.rule);
  metrics_.countRequest(endpointLabel, kindLabel(request.kind.kind),
                        operationLabel(request.operation), record.decision);
  return finish({200, encodeResponseBody(*review, decision, endpoint == Endpoint::Mutate)});
}

std::string formatDecisionLog(const DecisionRecord& r) {
  nlohmann::ordered_json line = {{"time", utcTimestampNow()},    {"level", "info"},
                                 {"msg", "admission decision"},  {"uid", r.uid},
                                 {"endpoint", r.endpoint},       {"kind", r.kind},
                                 {"namespace", r.namespace_},    {"name", r.name},
                                 {"operation", r.operation},     {"user", r.user},
                                 {"decision", r.decision},       {"rules", r.rules},
                                 {"latency_us", r.latencyMicros}};
  if (!r.error.empty()) line["error"] = r.error;
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace hybrid_guard::webhook
