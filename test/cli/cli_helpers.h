#pragma once

// Runs the built hybrid-guard binary, optionally from a given folder so that sources read as the
// user would see them (`input.yaml:12`).
#include <filesystem>
#include <string>
#include <vector>

#include "test/support/test_support.h"

namespace hybrid_guard::test {

inline CommandResult hybridGuard(std::vector<std::string> args, const std::string& stdinText = "") {
  args.insert(args.begin(), binaryPath().string());
  return runCommand(args, stdinText);
}

// runCommand has no working-directory parameter: a shell changes folder, then execs the binary
// with the arguments untouched ("$@" keeps every argument as one word).
inline CommandResult hybridGuardIn(const std::filesystem::path& dir,
                                   const std::vector<std::string>& args,
                                   const std::string& stdinText = "") {
  std::vector<std::string> argv = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", dir.string(),
                                   binaryPath().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, stdinText);
}

}  // namespace hybrid_guard::test
