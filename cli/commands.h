#pragma once

#include <string>
#include <vector>

namespace hybrid_guard::cli {

// Exit codes of DESIGN §7.
inline constexpr int kExitOk = 0;
inline constexpr int kExitDenied = 1;
inline constexpr int kExitUsage = 2;

int run(int argc, char** argv);
int runEval(const std::vector<std::string>& args);
int runLint(const std::vector<std::string>& args);
int runServe(const std::vector<std::string>& args);

}  // namespace hybrid_guard::cli
