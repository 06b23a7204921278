#include "policy/decision.h"

#include "policy/rules.h"

namespace hybrid_guard::policy {

using nlohmann::json;

std::string_view toString(Operation op) {
  switch (op) {
    case Operation::Create:
      return "CREATE";
    case Operation::Update:
      return "UPDATE";
    case Operation::Delete:
      return "DELETE";
    case Operation::Connect:
      return "CONNECT";
  }
  return "CREATE";
}

namespace {

constexpr size_t kMaxWarningLength = 256;
constexpr size_t kMaxWarningsBytes = 4096;
// A denial lists every violation, but an object can make thousands (one per cipher suite) or echo
// a megabyte value: each line is cut at 1 KiB and the message at 16 KiB, the rest counted.
constexpr size_t kMaxDenialLineLength = 1024;
constexpr size_t kMaxDenialBytes = 16 * 1024;

// Cuts at a UTF-8 character boundary so the text stays valid.
std::string truncateUtf8(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  const std::string ellipsis = "…";
  size_t cut = max - ellipsis.size();
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + ellipsis;
}

bool sameJson(const json* a, const json* b) {
  if (!a || !b) return a == b || (a ? a->is_null() : b->is_null());
  return *a == *b;
}

void decideSidecar(const AdmissionRequest& request, const Policy& policy, const State& state,
                   Decision& decision) {
  decision.subject = Subject::Sidecar;
  if (request.operation == Operation::Delete) {
    decision.name = request.name;
    if (request.oldObject) {
      auto old = readSidecar(*request.oldObject, request.namespace_);
      if (!old.view.name.empty()) decision.name = old.view.name;
    }
    if (!request.dryRun && state.find(decision.namespace_, decision.name)) {
      decision.change.kind = StateChange::Kind::Remove;
      decision.change.sidecar.namespace_ = decision.namespace_;
      decision.change.sidecar.name = decision.name;
    }
    return;
  }
  if (!request.object) return;
  SidecarRead read = readSidecar(*request.object, request.namespace_);
  const SidecarView& sidecar = read.view;
  if (sidecar.name.empty() && !request.name.empty()) read.view.name = request.name;
  decision.name = sidecar.name;
  decision.namespace_ = sidecar.namespace_;
  if (!read.invalid.empty()) {
    decision.evaluated = true;
    decision.violations = std::move(read.invalid);
    return;
  }
  auto release = [&] {
    if (!request.dryRun && state.find(sidecar.namespace_, sidecar.name)) {
      decision.change.kind = StateChange::Kind::Remove;
      decision.change.sidecar.namespace_ = sidecar.namespace_;
      decision.change.sidecar.name = sidecar.name;
    }
  };
  if (!sidecar.hybrid()) {
    release();  // not (or no longer) hybrid: not our business, and its slot is free
    return;
  }
  if (request.operation == Operation::Update && request.oldObject) {
    SidecarRead old = readSidecar(*request.oldObject, request.namespace_);
    if (old.invalid.empty() && sameJson(old.view.ingress, sidecar.ingress) &&
        sameJson(old.view.workloadSelector, sidecar.workloadSelector)) {
      // Labels, annotations, finalizers, deletion: never locked out by a policy change.
      if (!request.dryRun) {
        decision.change.kind = StateChange::Kind::Upsert;
        decision.change.sidecar = sidecar.toHybridSidecar();
      }
      return;
    }
  }
  decision.evaluated = true;
  checkSidecarRules(sidecar, request, policy, state, decision);
  if (!request.dryRun) {
    decision.change.kind = StateChange::Kind::Upsert;
    decision.change.sidecar = sidecar.toHybridSidecar();
  }
}

void decideWorkload(const AdmissionRequest& request, const PodLocation& location,
                    const Policy& policy, const State& state, Phase phase, Decision& decision) {
  decision.subject = Subject::Workload;
  decision.name = request.name;
  if (request.operation == Operation::Delete || !request.object) return;
  WorkloadRead read =
      readWorkload(*request.object, location, request.kind.kind, request.namespace_);
  decision.namespace_ = read.view.namespace_;
  if (!read.view.displayName.empty()) decision.name = read.view.displayName;
  if (policy.isExempt(decision.namespace_)) return;
  decision.evaluated = true;
  if (!read.invalid.empty()) {
    if (phase != Phase::Mutate) decision.violations = std::move(read.invalid);
    return;
  }
  if (phase != Phase::Mutate) {
    std::optional<WorkloadRead> old;
    if (request.operation == Operation::Update && request.oldObject) {
      old = readWorkload(*request.oldObject, location, request.kind.kind, request.namespace_);
    }
    checkWorkloadRules(read.view, old ? &old->view : nullptr, request, policy, state, decision);
  }
  if (phase != Phase::Validate && request.operation == Operation::Create &&
      request.kind.kind == "Pod") {
    decision.patch = mutationPatch(read.view, policy, state, decision);
  }
}

}  // namespace

KeepSchema objectReads() {
  using Members = std::vector<KeepSchema::Member>;
  auto all = KeepSchema::all;
  // readWorkload: identity and the controller flag of owner references; readSidecar: name and
  // namespace; the pod template's labels and annotations (selection, opt-outs, ProxyConfig); the
  // uid, which the webhook's quota ledger records with each reservation (delete and recreate).
  KeepSchema metadata = KeepSchema::object(Members{
      {"name", all()},
      {"uid", all()},
      {"generateName", all()},
      {"namespace", all()},
      {"ownerReferences", KeepSchema::array(KeepSchema::object(Members{{"controller", all()}}))},
      {"labels", all()},
      {"annotations", all()},
  });
  // readContainers and the mutation: the name, the flag's env entry (of valueFrom only whether it
  // is a map), the proxy's mounts.
  KeepSchema container = KeepSchema::object(Members{
      {"name", all()},
      {"env", KeepSchema::array(KeepSchema::object(Members{
                  {"name", all()}, {"value", all()}, {"valueFrom", KeepSchema::object({})}}))},
      {"volumeMounts", all()},
  });
  Members podSpec{
      {"hostNetwork", all()},
      {"containers", KeepSchema::array(container)},
      {"initContainers", KeepSchema::array(container)},
  };
  KeepSchema podTemplate =
      KeepSchema::object(Members{{"metadata", metadata}, {"spec", KeepSchema::object(podSpec)}});
  // One spec for every kind: a Sidecar's (workloadSelector, ingress), a Pod's, and the pod
  // templates of the workload kinds (spec.template, CronJob's spec.jobTemplate.spec.template).
  Members spec = podSpec;
  spec.insert(
      spec.end(),
      {{"workloadSelector", all()},
       {"ingress", all()},
       {"template", podTemplate},
       {"jobTemplate", KeepSchema::object(Members{
                           {"spec", KeepSchema::object(Members{{"template", podTemplate}})}})}});
  return KeepSchema::object(Members{{"metadata", metadata}, {"spec", KeepSchema::object(spec)}});
}

Decision decide(const AdmissionRequest& request, const Policy& policy, const State& state,
                Phase phase) {
  Decision decision;
  decision.enforcement = policy.enforcement;
  decision.namespace_ = request.namespace_;
  decision.name = request.name;
  if (isSidecarKind(request.kind.group, request.kind.kind)) {
    if (phase != Phase::Mutate) decideSidecar(request, policy, state, decision);
  } else if (auto location = podLocationFor(request.kind.group, request.kind.kind)) {
    decideWorkload(request, *location, policy, state, phase, decision);
  }
  bool hasViolations = !decision.violations.empty();
  decision.allowed = !(hasViolations && policy.enforcement == Enforcement::Deny);
  if (!decision.allowed && decision.change.kind == StateChange::Kind::Upsert) {
    decision.change = StateChange{};
  }
  if (policy.enforcement == Enforcement::DryRun) decision.patch = json::array();
  return decision;
}

std::vector<std::string> Decision::admissionWarnings() const {
  std::vector<const Finding*> all;
  for (const auto& v : violations) {
    // warn returns every violation as a warning; dryrun only records, but a quota overrun it
    // admits is still said out loud (DESIGN §4).
    bool quota = v.rule == rules::kNamespaceQuotaExceeded || v.rule == rules::kClusterQuotaExceeded;
    if (enforcement == Enforcement::Warn || (enforcement == Enforcement::DryRun && quota)) {
      all.push_back(&v);
    }
  }
  for (const auto& w : warnings) all.push_back(&w);
  std::vector<std::string> out;
  size_t bytes = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    std::string text = truncateUtf8(all[i]->str(), kMaxWarningLength);
    size_t remaining = all.size() - i;
    std::string more = "… and " + std::to_string(remaining) + " more (see the webhook log)";
    if (bytes + text.size() + (remaining > 1 ? more.size() : 0) > kMaxWarningsBytes) {
      out.push_back(more);
      break;
    }
    bytes += text.size();
    out.push_back(std::move(text));
  }
  return out;
}

std::string Decision::denialMessage() const {
  std::string kind = subject == Subject::Sidecar ? "hybrid Sidecar" : "object";
  std::string out = "hybrid-guard denied " + kind + " " + namespace_ + "/" + name + ": " +
                    std::to_string(violations.size()) +
                    (violations.size() == 1 ? " violation" : " violations");
  for (size_t i = 0; i < violations.size(); ++i) {
    std::string line = truncateUtf8(violations[i].str(), kMaxDenialLineLength);
    size_t remaining = violations.size() - i;
    std::string more = "… and " + std::to_string(remaining) +
                       " more violations (hybrid-guard eval lists every one)";
    if (out.size() + 1 + line.size() + (remaining > 1 ? 1 + more.size() : 0) > kMaxDenialBytes) {
      out += "\n" + more;
      break;
    }
    out += "\n" + line;
  }
  return out;
}

std::string_view Decision::outcome() const {
  if (!allowed) return "deny";
  if (!violations.empty() || !warnings.empty()) return "warn";
  return "allow";
}

}  // namespace hybrid_guard::policy
