#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/admission.h"
#include "policy/document.h"
#include "policy/finding.h"
#include "policy/policy.h"
#include "policy/state.h"

namespace hybrid_guard::policy {

// Which webhook asks: the validating one wants the verdict, the mutating one the patch, the
// CLI both (as a cluster would run them: mutation first, then validation).
enum class Phase { Validate, Mutate, Both };

enum class Subject { Other, Sidecar, Workload };

struct Decision {
  Subject subject = Subject::Other;
  bool evaluated = false;  // false: not hybrid-guard's business, or admitted unevaluated
  bool allowed = true;
  Enforcement enforcement = Enforcement::Deny;
  std::string namespace_;
  std::string name;  // or generateName followed by `*`
  std::vector<Finding> violations;
  std::vector<Finding> warnings;
  nlohmann::json patch = nlohmann::json::array();  // JSONPatch operations; empty: no change
  StateChange change;  // to apply once the request is admitted (never for dry-run requests)

  // The admission warnings (DESIGN §4): warnings, plus the violations in warn mode, each
  // `[rule] path: message`, at most 256 characters each and 4 KiB in all.
  std::vector<std::string> admissionWarnings() const;
  // The denial message: a summary line, then each violation `[rule] path: message`, a line cut
  // at 1 KiB, until 16 KiB; past that one line says how many more there are.
  std::string denialMessage() const;
  // allow, deny or warn (admitted with violations or warnings), as metrics and logs name it.
  std::string_view outcome() const;
};

// The parts of a request's object (and oldObject) that decide() reads, for every kind it decides
// on (Sidecars and the pod-carrying kinds of podLocationFor). A reader may build only these
// (parseJsonKeeping): decide() then gives the same decision as for the whole object.
KeepSchema objectReads();

// The one decision function: the webhook and the CLI call it unchanged. Pure: it reads the
// request, the policy and the state, and says what to change as data.
Decision decide(const AdmissionRequest& request, const Policy& policy, const State& state,
                Phase phase = Phase::Both);

}  // namespace hybrid_guard::policy
