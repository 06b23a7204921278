#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "webhook/https_server.h"
#include "webhook/server_metrics.h"
#include "webhook/state_store.h"

namespace hybrid_guard::webhook {

// One decision as the log line of DESIGN §6 records it.
struct DecisionRecord {
  std::string uid;
  std::string_view endpoint;
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string operation;
  std::string user;
  std::string_view decision;  // allow, deny, warn, error
  std::vector<std::string> rules;
  std::string error;  // for decision "error"
  long long latencyMicros = 0;
};
using DecisionLogger = std::function<void(const DecisionRecord&)>;

// The HTTP layer's one function from request body to response: decode the AdmissionReview, decide
// with the engine, record, encode. Bad input is a 400 with {"error": ...}, never an admit.
class AdmissionService {
 public:
  AdmissionService(const PolicyHolder& policy, StateStore& state, ServerMetrics& metrics,
                   DecisionLogger log);

  HttpResponse handle(Endpoint endpoint, std::string_view body);

 private:
  const PolicyHolder& policy_;
  StateStore& state_;
  ServerMetrics& metrics_;
  DecisionLogger log_;
};

// The log line itself: one JSON object.
std::string formatDecisionLog(const DecisionRecord& record);

}  // namespace hybrid_guard::webhook
