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

namespace hybrid_guard::test {

// A program started in the background with its stdout and stderr captured; killed (SIGKILL) when
// the object goes away if it still runs.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits until stdout has a line containing `needle`; returns that line, or "" after `timeoutMs`.
  std::string waitForLine(const std::string& needle, int timeoutMs = 10000);
  void signal(int sig);
  // Waits for the exit; the exit code, 128+signal, or -1 on timeout.
  int wait(int timeoutMs = 10000);
  std::string out();
  std::string err();
  int pid() const { return pid_; }

 private:
  void pump(int timeoutMs);
  int pid_ = -1;
  int outFd_ = -1;
  int errFd_ = -1;
  std::string out_;
  std::string err_;
  int exitCode_ = -1;
  bool exited_ = false;
};

}  // namespace hybrid_guard::test
