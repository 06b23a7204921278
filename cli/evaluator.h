#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/input_reader.h"
#include "policy/decision.h"
#include "policy/policy.h"
#include "policy/state.h"

namespace hybrid_guard::cli {

struct Requester {
  std::string user;
  std::vector<std::string> groups;
  std::string defaultNamespace = "default";
};

struct EvalResult {
  std::string source;
  std::string apiVersion;
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string operation;
  policy::Decision decision;
};

// Evaluates objects in input order as a cluster receiving them in that order would: known
// objects (state and earlier admitted inputs) turn a later input into an UPDATE.
class Evaluator {
 public:
  Evaluator(std::shared_ptr<const policy::Policy> policy, Requester requester);

  // --state objects: trusted, not evaluated; hybrid Sidecars count and select pods.
  void seed(const std::vector<InputObject>& objects);
  EvalResult evaluate(const InputObject& input);

  const policy::State& state() const { return state_; }

 private:
  std::shared_ptr<const policy::Policy> policy_;
  Requester requester_;
  policy::State state_;
  std::map<std::string, nlohmann::json> known_;
};

// Adds the hybrid Sidecars among `objects` (plain objects or AdmissionReviews) to `state`.
// Objects without a namespace (and not in an AdmissionReview) belong to `defaultNamespace`.
void seedState(const std::vector<InputObject>& objects, const std::string& defaultNamespace,
               policy::State& state);

nlohmann::ordered_json resultsToJson(const std::vector<EvalResult>& results);
std::string resultsToText(const std::vector<EvalResult>& results);

}  // namespace hybrid_guard::cli
