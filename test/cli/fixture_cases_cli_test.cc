// The fixture cases of test/fixtures/cases run through the built binary, from the case folder:
// `hybrid-guard eval -o json [--policy policy.yaml] [--state state.yaml] [args] input.yaml`
// prints expected.json, exits 0 when every object is admitted and 1 when one is denied
// (DESIGN §7), and its patches applied back give patched.json (DESIGN §5).
#include <catch2/catch.hpp>

#include <sstream>

#include "test/cli/cli_helpers.h"
#include "test/fixtures/fixture_cases.h"

using namespace hybrid_guard;
using nlohmann::json;

namespace {

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// `[rule] path: message` (DESIGN §4 warning text), without `path: ` when the path is empty.
std::string findingText(const json& finding) {
  std::string path = finding["path"].get<std::string>();
  return "[" + finding["rule"].get<std::string>() + "] " + (path.empty() ? "" : path + ": ") +
         finding["message"].get<std::string>();
}

// The line text output prints for a result: verdict, kind, namespace/name, source.
std::string headLine(const json& result) {
  std::string verdict = !result["allowed"].get<bool>()                               ? "DENY"
                        : result["violations"].empty() && result["warnings"].empty() ? "ALLOW"
                                                                                     : "WARN";
  std::string ns = result["namespace"].get<std::string>();
  std::string name = result["name"].get<std::string>();
  std::string kind = result["kind"].get<std::string>();
  return verdict + " " + (kind.empty() ? "object" : kind) + " " +
         (ns.empty() ? name : ns + "/" + name) + " " + result["source"].get<std::string>();
}

}  // namespace

TEST_CASE("fixture cases: eval -o json prints expected.json and exits 0 or 1", "[fixtures]") {
  auto cases = test::fixtureCases();
  REQUIRE(cases.size() >= 60);
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      auto run = test::hybridGuardIn(c.dir, c.evalArgs());
      INFO("stderr: " << run.err);
      CHECK(run.exitCode == (c.anyDenied() ? 1 : 0));
      CHECK(run.err.empty());
      json output;
      REQUIRE_NOTHROW(output = json::parse(run.out));
      test::checkOutput(c, output);
      test::checkPatched(c, output, test::readCaseFile(c, "input.yaml"));
    }
  }
}

TEST_CASE("fixture cases: text output has one line per object and its findings", "[fixtures]") {
  for (const auto& c : test::fixtureCases()) {
    DYNAMIC_SECTION(c.name) {
      auto args = c.evalArgs();
      args.erase(args.begin() + 1, args.begin() + 3);  // drop -o json: text is the default
      auto run = test::hybridGuardIn(c.dir, args);
      CHECK(run.exitCode == (c.anyDenied() ? 1 : 0));
      auto lines = linesOf(run.out);
      std::vector<std::string> heads;
      for (const auto& line : lines) {
        if (line.rfind("  ", 0) != 0) heads.push_back(line);
      }
      const json& summary = c.expected["summary"];
      std::vector<std::string> want;
      for (const auto& result : c.expected["results"]) want.push_back(headLine(result));
      want.push_back(std::to_string(summary["objects"].get<int>()) +
                     " objects: " + std::to_string(summary["admitted"].get<int>()) + " admitted, " +
                     std::to_string(summary["denied"].get<int>()) + " denied, " +
                     std::to_string(summary["warnings"].get<int>()) + " warnings");
      CHECK(heads == want);
      for (const auto& result : c.expected["results"]) {
        for (const auto& v : result["violations"]) {
          std::string line = "  " + findingText(v);
          INFO(result["source"]);
          CHECK(std::find(lines.begin(), lines.end(), line) != lines.end());
        }
        for (const auto& w : result["warnings"]) {
          std::string line = "  warning: " + findingText(w);
          INFO(result["source"]);
          CHECK(std::find(lines.begin(), lines.end(), line) != lines.end());
        }
      }
    }
  }
}
