// libFuzzer target: the `eval` input reader and evaluator on arbitrary file contents.
#include <cstdint>
#include <string>

#include "cli/evaluator.h"
#include "cli/input_reader.h"
#include "test/fuzz/fuzz_policy.h"

using namespace hybrid_guard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto policy = fuzz::fuzzPolicy();
  std::string text(reinterpret_cast<const char*>(data), size);
  auto objects = cli::readText(text, "fuzz.yaml");
  if (!objects) return 0;
  cli::Evaluator evaluator(policy, cli::Requester{"alice", {"admins"}, "default"});
  std::vector<cli::EvalResult> results;
  for (const auto& object : *objects) results.push_back(evaluator.evaluate(object));
  (void)cli::resultsToJson(results).dump();
  (void)cli::resultsToText(results);
  return 0;
}
