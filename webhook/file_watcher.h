#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace hybrid_guard::webhook {

// Polls a set of files and reports when the content of any of them changed.
//
// Content is compared by SHA-256, not by mtime, and each path is opened afresh on every poll, so
// a Kubernetes Secret/ConfigMap volume update (path -> ..data/file, with `..data` atomically
// re-pointed at a new timestamped directory) and an editor that replaces the file are both seen.
// A change is reported once two consecutive polls saw the same new content, so a file caught
// mid-write, or a certificate written a moment before its key, is not reported half-done. A file
// that is missing or unreadable counts as unchanged until it is readable again.
class FileWatcher {
 public:
  using Callback = std::function<void()>;

  FileWatcher(std::vector<std::filesystem::path> paths, Callback onChange,
              std::chrono::milliseconds interval = std::chrono::milliseconds(500));
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Polls on a thread of its own every interval. The contents at construction are the baseline.
  void start();
  // Returns promptly, also in the middle of an interval; waits for a running callback to finish.
  void stop();

  // One poll on the caller's thread; true when it reported a change (and ran the callback).
  bool pollOnce();

 private:
  using Digest = std::array<unsigned char, 32>;

  // The digest of the file's current content; null when it cannot be read right now. Always
  // reads the file: size and times do not tell (a same-size rewrite within one timestamp tick,
  // or a copy that keeps the mtime, changes neither), and the files watched here are small.
  std::optional<Digest> observe(std::size_t index) const;
  void run();

  std::vector<std::filesystem::path> paths_;
  Callback onChange_;
  std::chrono::milliseconds interval_;

  std::mutex pollMutex_;                         // serializes polls and guards the state below
  std::vector<std::optional<Digest>> reported_;  // contents last reported (or the baseline)
  std::optional<std::vector<std::optional<Digest>>> pending_;  // seen once, awaiting confirmation

  std::mutex stateMutex_;
  std::condition_variable wakeUp_;
  bool stopRequested_ = false;
  std::thread thread_;
};

}  // namespace hybrid_guard::webhook
