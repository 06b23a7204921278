#pragma once

#include <istream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/expected.h"

namespace hybrid_guard::cli {

// One document (or one item of a List) read from an input, with where it starts.
struct InputObject {
  std::string source;  // file:line
  nlohmann::json value;
};

struct InputError {
  std::string source;  // file or file:line
  std::string message;
  std::string str() const { return source + ": " + message; }
};

using InputResult = policy::Expected<std::vector<InputObject>, std::vector<InputError>>;

// Reads PATHs as `eval` and `--state` do (DESIGN §7): files by any name, directories
// recursively in sorted order (.yaml, .yml, .json), `-` for stdin; multi-document YAML, JSON,
// and List objects expanded into their items. Every error is collected.
InputResult readInputs(const std::vector<std::string>& paths, std::istream& stdinStream);

// Reads one text that came from `source` (exposed for tests and fuzzing).
InputResult readText(const std::string& text, const std::string& source);

}  // namespace hybrid_guard::cli
