#pragma once

#include "policy/decision.h"
#include "policy/sidecar_view.h"
#include "policy/workload_view.h"

// The rule sets behind decide(); each fills a Decision's findings.
namespace hybrid_guard::policy {

void checkSidecarRules(const SidecarView& sidecar, const AdmissionRequest& request,
                       const Policy& policy, const State& state, Decision& decision);

void checkWorkloadRules(const WorkloadView& workload, const WorkloadView* old,
                        const AdmissionRequest& request, const Policy& policy, const State& state,
                        Decision& decision);

// The JSONPatch of DESIGN §5 for a Pod CREATE, or an empty array; adds warnings it finds.
nlohmann::json mutationPatch(const WorkloadView& view, const Policy& policy, const State& state,
                             Decision& decision);

}  // namespace hybrid_guard::policy
