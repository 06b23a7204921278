#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace hybrid_guard::test {

// Whole file as a string; fails the calling test (throws) when it cannot be read.
std::string readFile(const std::filesystem::path& path);
std::filesystem::path sourceDir();
std::filesystem::path sharedDir();
std::filesystem::path fixturesDir();
std::filesystem::path binaryPath();

// A fresh directory under the system temp folder, removed when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exitCode = -1;
  std::string out;
  std::string err;
};

// Runs argv (no shell) with optional stdin text and captures both output streams.
CommandResult runCommand(const std::vector<std::string>& argv, const std::string& stdinText = "");

}  // namespace hybrid_guard::test
