#include "cli/commands.h"

#include <iostream>

#include "cli/evaluator.h"
#include "cli/flags.h"
#include "cli/input_reader.h"
#include "policy/policy.h"

namespace hybrid_guard::cli {

namespace {

constexpr const char* kUsage =
    "usage: hybrid-guard <command> [flags]\n"
    "\n"
    "commands:\n"
    "  serve [--policy FILE] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE]\n"
    "        [--metrics-listen HOST:PORT] [--state PATH]... [--max-body-bytes N]\n"
    "        [--request-timeout S] [--idle-timeout S] [--max-connections N]\n"
    "        [--ca-out FILE] [--log-level L]\n"
    "        the HTTPS admission webhook (/validate, /mutate); side port /healthz /readyz "
    "/metrics\n"
    "  eval  [--policy FILE] [--state PATH]... [--user NAME] [--group NAME]...\n"
    "        [--namespace NS] [-o text|json] PATH...\n"
    "        evaluate manifests offline with the webhook's engine\n"
    "  lint  FILE...      check policy files\n"
    "  version            print the version\n";

void printPolicyErrors(const std::vector<policy::PolicyError>& errors) {
  for (const auto& e : errors) std::cerr << e.str() << "\n";
}

}  // namespace

int runEval(const std::vector<std::string>& args) {
  Flags flags({{"policy"},
               {"state", true, true},
               {"user"},
               {"group", true, true},
               {"namespace"},
               {"o"},
               {"output"},
               {"help", false}});
  if (auto error = flags.parse(args)) {
    std::cerr << "hybrid-guard eval: " << *error << "\n" << kUsage;
    return kExitUsage;
  }
  if (flags.has("help")) {
    std::cout << kUsage;
    return kExitOk;
  }
  std::string format = flags.value("o").value_or(flags.value("output").value_or("text"));
  if (format != "text" && format != "json") {
    std::cerr << "hybrid-guard eval: -o must be text or json, not \"" << format << "\"\n";
    return kExitUsage;
  }
  if (flags.positional().empty()) {
    std::cerr << "hybrid-guard eval: no input; name files, directories or - for stdin\n" << kUsage;
    return kExitUsage;
  }
  std::shared_ptr<const policy::Policy> policy = policy::defaultPolicy();
  if (auto file = flags.value("policy")) {
    auto loaded = policy::loadPolicyFile(*file);
    if (!loaded) {
      printPolicyErrors(loaded.error());
      return kExitUsage;
    }
    policy = *loaded;
  }
  Requester requester;
  requester.user = flags.value("user").value_or("");
  requester.groups = flags.values("group");
  if (auto ns = flags.value("namespace")) requester.defaultNamespace = *ns;

  auto stateInputs = readInputs(flags.values("state"), std::cin);
  auto inputs = readInputs(flags.positional(), std::cin);
  bool failed = false;
  for (const auto* result : {&stateInputs, &inputs}) {
    if (!*result) {
      for (const auto& e : result->error()) std::cerr << e.str() << "\n";
      failed = true;
    }
  }
  if (failed) return kExitUsage;

  Evaluator evaluator(policy, requester);
  evaluator.seed(*stateInputs);
  std::vector<EvalResult> results;
  results.reserve(inputs->size());
  bool denied = false;
  for (const auto& input : *inputs) {
    results.push_back(evaluator.evaluate(input));
    denied = denied || !results.back().decision.allowed;
  }
  if (format == "json") {
    std::cout << resultsToJson(results).dump(2) << "\n";
  } else {
    std::cout << resultsToText(results);
  }
  return denied ? kExitDenied : kExitOk;
}

int runLint(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << "hybrid-guard lint: name one or more policy files\n";
    return kExitUsage;
  }
  bool allValid = true;
  for (const auto& file : args) {
    auto loaded = policy::loadPolicyFile(file);
    if (!loaded) {
      printPolicyErrors(loaded.error());
      std::cerr << file << ": invalid (" << loaded.error().size()
                << (loaded.error().size() == 1 ? " error)" : " errors)") << "\n";
      allValid = false;
    } else {
      std::cout << file << ": valid (policy \"" << (*loaded)->name << "\", enforcement "
                << policy::toString((*loaded)->enforcement) << ")\n";
    }
  }
  return allValid ? kExitOk : kExitUsage;
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  std::string command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "eval") return runEval(rest);
  if (command == "lint") return runLint(rest);
  if (command == "serve") return runServe(rest);
  if (command == "version" || command == "--version") {
    std::cout << "hybrid-guard " << HG_VERSION << "\n";
    return kExitOk;
  }
  std::cerr << "hybrid-guard: unknown command \"" << command << "\"\n" << kUsage;
  return kExitUsage;
}

}  // namespace hybrid_guard::cli
