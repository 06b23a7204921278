#include "test/support/test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace hybrid_guard::test {

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::filesystem::path sourceDir() {
  return HG_SOURCE_DIR;
}
std::filesystem::path sharedDir() {
  if (const char* env = std::getenv("HG_SHARED_DIR")) return env;
  return HG_SHARED_DIR;
}
std::filesystem::path fixturesDir() {
  return sourceDir() / "test" / "fixtures";
}
std::filesystem::path binaryPath() {
  return HG_BINARY;
}

TempDir::TempDir() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = std::filesystem::temp_directory_path() /
                     ("hybrid-guard-test-" + std::to_string(gen() % 1000000000ULL));
    if (std::filesystem::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path TempDir::write(const std::string& name, const std::string& content) const {
  auto target = path_ / name;
  std::filesystem::create_directories(target.parent_path());
  std::ofstream out(target, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + target.string());
  return target;
}

namespace {
void drainInto(int fd, std::string& sink) {
  char buf[65536];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) sink.append(buf, static_cast<size_t>(n));
}
}  // namespace

CommandResult runCommand(const std::vector<std::string>& argv, const std::string& stdinText) {
  int inPipe[2], outPipe[2], errPipe[2];
  if (pipe(inPipe) != 0 || pipe(outPipe) != 0 || pipe(errPipe) != 0)
    throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(inPipe[0], 0);
    dup2(outPipe[1], 1);
    dup2(errPipe[1], 2);
    for (int fd : {inPipe[0], inPipe[1], outPipe[0], outPipe[1], errPipe[0], errPipe[1]}) close(fd);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(inPipe[0]);
  close(outPipe[1]);
  close(errPipe[1]);
  CommandResult result;
  size_t written = 0;
  int inFd = inPipe[1];
  if (stdinText.empty()) {
    close(inFd);
    inFd = -1;
  } else {
    fcntl(inFd, F_SETFL, O_NONBLOCK);
  }
  bool outOpen = true, errOpen = true;
  while (outOpen || errOpen) {
    std::vector<pollfd> fds;
    if (outOpen) fds.push_back({outPipe[0], POLLIN, 0});
    if (errOpen) fds.push_back({errPipe[0], POLLIN, 0});
    if (inFd >= 0) fds.push_back({inFd, POLLOUT, 0});
    if (poll(fds.data(), fds.size(), 60000) <= 0) break;
    for (const auto& p : fds) {
      if (p.fd == inFd && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t n = ::write(inFd, stdinText.data() + written, stdinText.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        if (n < 0 || written == stdinText.size()) {
          close(inFd);
          inFd = -1;
        }
      } else if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        std::string& sink = p.fd == outPipe[0] ? result.out : result.err;
        size_t before = sink.size();
        drainInto(p.fd, sink);
        if (sink.size() == before) (p.fd == outPipe[0] ? outOpen : errOpen) = false;
      }
    }
  }
  if (inFd >= 0) close(inFd);
  close(outPipe[0]);
  close(errPipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace hybrid_guard::test

namespace hybrid_guard::test {

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
  int outPipe[2], errPipe[2];
  if (pipe(outPipe) != 0 || pipe(errPipe) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int devNull = open("/dev/null", O_RDONLY);
    dup2(devNull, 0);
    dup2(outPipe[1], 1);
    dup2(errPipe[1], 2);
    for (int fd : {outPipe[0], outPipe[1], errPipe[0], errPipe[1], devNull}) close(fd);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(outPipe[1]);
  close(errPipe[1]);
  outFd_ = outPipe[0];
  errFd_ = errPipe[0];
  fcntl(outFd_, F_SETFL, O_NONBLOCK);
  fcntl(errFd_, F_SETFL, O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (outFd_ >= 0) close(outFd_);
  if (errFd_ >= 0) close(errFd_);
}

void ChildProcess::pump(int timeoutMs) {
  std::vector<pollfd> fds;
  if (outFd_ >= 0) fds.push_back({outFd_, POLLIN, 0});
  if (errFd_ >= 0) fds.push_back({errFd_, POLLIN, 0});
  if (fds.empty()) return;
  if (poll(fds.data(), fds.size(), timeoutMs) <= 0) return;
  for (const auto& p : fds) {
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char buf[65536];
    ssize_t n = ::read(p.fd, buf, sizeof buf);
    std::string& sink = p.fd == outFd_ ? out_ : err_;
    if (n > 0) {
      sink.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      close(p.fd);
      (p.fd == outFd_ ? outFd_ : errFd_) = -1;
    }
  }
}

std::string ChildProcess::waitForLine(const std::string& needle, int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (true) {
    size_t start = 0;
    while (start < out_.size()) {
      size_t end = out_.find('\n', start);
      if (end == std::string::npos) break;
      std::string line = out_.substr(start, end - start);
      if (line.find(needle) != std::string::npos) return line;
      start = end + 1;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0 || (outFd_ < 0 && errFd_ < 0)) return "";
    pump(static_cast<int>(std::min<long long>(left, 100)));
  }
}

void ChildProcess::signal(int sig) {
  if (!exited_) kill(pid_, sig);
}

int ChildProcess::wait(int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (!exited_) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      exitCode_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    pump(20);
  }
  while (outFd_ >= 0 || errFd_ >= 0) pump(100);
  return exitCode_;
}

std::string ChildProcess::out() {
  pump(0);
  return out_;
}
std::string ChildProcess::err() {
  pump(0);
  return err_;
}

}  // namespace hybrid_guard::test
