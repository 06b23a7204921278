// The fixture cases of test/fixtures/cases (STYLE.md: one folder per case), run in-process
// through the CLI's Evaluator exactly as `hybrid-guard eval -o json` runs them (cli/commands.cc
// runEval), compared with expected.json, and their patches applied back (DESIGN §5).
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "cli/evaluator.h"
#include "policy/finding.h"
#include "policy/policy.h"
#include "test/fixtures/fixture_cases.h"

using namespace hybrid_guard;
using nlohmann::json;

namespace {

cli::Requester requesterFrom(const test::FixtureCase& c) {
  cli::Requester requester;
  for (size_t i = 0; i < c.args.size(); i += 2) {
    INFO(c.name << "/args: every flag takes a value");
    REQUIRE(i + 1 < c.args.size());
    const std::string& flag = c.args[i];
    const std::string& value = c.args[i + 1];
    if (flag == "--user") {
      requester.user = value;
    } else if (flag == "--group") {
      requester.groups.push_back(value);
    } else if (flag == "--namespace") {
      requester.defaultNamespace = value;
    } else {
      FAIL(c.name << "/args: unknown flag " << flag);
    }
  }
  return requester;
}

struct CaseRun {
  std::vector<cli::InputObject> inputs;
  std::vector<cli::EvalResult> results;
  json output;
};

CaseRun runCase(const test::FixtureCase& c) {
  std::shared_ptr<const policy::Policy> policy = policy::defaultPolicy();
  if (c.hasPolicy) {
    auto loaded = policy::loadPolicyFile((c.dir / "policy.yaml").string());
    if (!loaded) FAIL(c.name << "/policy.yaml: " << loaded.error().front().str());
    policy = *loaded;
  }
  cli::Evaluator evaluator(policy, requesterFrom(c));
  if (c.hasState) evaluator.seed(test::readCaseFile(c, "state.yaml"));
  CaseRun run;
  run.inputs = test::readCaseFile(c, "input.yaml");
  for (const auto& input : run.inputs) run.results.push_back(evaluator.evaluate(input));
  run.output = json::parse(cli::resultsToJson(run.results).dump());
  return run;
}

const test::FixtureCase& findCase(const std::vector<test::FixtureCase>& cases,
                                  const std::string& name) {
  for (const auto& c : cases) {
    if (c.name == name) return c;
  }
  FAIL("no fixture case " << name);
  return cases.front();
}

}  // namespace

TEST_CASE("fixture cases: the engine's output is expected.json", "[fixtures]") {
  auto cases = test::fixtureCases();
  REQUIRE(cases.size() >= 60);
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      CaseRun run = runCase(c);
      test::checkOutput(c, run.output);
      test::checkPatched(c, run.output, run.inputs);
    }
  }
}

TEST_CASE("fixture cases: every rule id of DESIGN §4 is violated alone and passed", "[fixtures]") {
  auto cases = test::fixtureCases();
  // Rule id → a case whose objects all pass that rule's checks (and every other).
  const std::map<std::string, std::string> passing = {
      {policy::rules::kMeshRootNamespace, "mesh-root-namespace-pass"},
      {policy::rules::kNamespaceNotAllowed, "namespace-not-allowed-pass"},
      {policy::rules::kRequesterNotAllowed, "requester-user-args"},
      {policy::rules::kWorkloadSelectorRequired, "workload-selector-required-pass"},
      {policy::rules::kTlsMode, "tls-mode-pass"},
      {policy::rules::kTlsPortProtocol, "tls-port-protocol-pass"},
      {policy::rules::kTlsUnsupportedField, "tls-unsupported-field-pass"},
      {policy::rules::kTlsCredentials, "tls-credentials-pass"},
      {policy::rules::kTlsCertificatePath, "tls-certificate-path-pass"},
      {policy::rules::kTlsMinVersion, "tls-min-version-pass"},
      {policy::rules::kTlsCipherSuites, "tls-cipher-suites-pass"},
      {policy::rules::kPortNotAllowed, "port-not-allowed-pass"},
      {policy::rules::kNamespaceQuotaExceeded, "namespace-quota-pass"},
      {policy::rules::kClusterQuotaExceeded, "cluster-quota-pass"},
      {policy::rules::kHybridFlagUnapproved, "hybrid-flag-approved"},
      {policy::rules::kSelectorOverlap, "namespace-quota-pass"},
      {policy::rules::kCertificateNotMounted, "mutation-new-annotation"},
      {policy::rules::kProxyConfigUnparseable, "mutation-merge-proxy-config"},
      {policy::rules::kInvalidObject, "sidecar-hybrid-admitted"},
  };
  for (const auto& [rule, passName] : passing) {
    DYNAMIC_SECTION(rule) {
      bool violatedAlone = false;
      for (const auto& c : cases) {
        for (const auto& result : c.expected["results"]) {
          std::set<std::string> rules;
          for (const char* list : {"violations", "warnings"}) {
            for (const auto& f : result[list]) rules.insert(f["rule"].get<std::string>());
          }
          violatedAlone = violatedAlone || rules == std::set<std::string>{rule};
        }
      }
      CHECK(violatedAlone);
      const auto& pass = findCase(cases, passName);
      for (const auto& result : pass.expected["results"]) {
        INFO(passName << " " << result["source"]);
        CHECK(result["allowed"] == true);
        CHECK(result["violations"].empty());
        CHECK(result["warnings"].empty());
      }
    }
  }
}

// DESIGN §4: "A quota overrun ... in warn or dryrun mode admits with a warning (the reservation
// is still written)"; `warn` also returns each violation as an admission warning.
TEST_CASE("fixture cases: warn and dryrun admit a quota overrun with a warning", "[fixtures]") {
  auto cases = test::fixtureCases();
  for (const char* name : {"enforcement-warn", "enforcement-dryrun"}) {
    DYNAMIC_SECTION(name) {
      CaseRun run = runCase(findCase(cases, name));
      size_t overruns = 0;
      for (const auto& result : run.results) {
        const policy::Decision& d = result.decision;
        for (const auto& v : d.violations) {
          if (v.rule != policy::rules::kNamespaceQuotaExceeded) continue;
          ++overruns;
          INFO(result.source << ": " << v.str());
          CHECK(d.allowed);
          auto warnings = d.admissionWarnings();
          std::string prefix = "[" + v.rule + "]";
          CHECK(std::any_of(warnings.begin(), warnings.end(),
                            [&](const std::string& w) { return w.rfind(prefix, 0) == 0; }));
        }
      }
      CHECK(overruns >= 1);
    }
  }
}
