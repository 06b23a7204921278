#include "webhook/file_watcher.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <memory>

namespace hybrid_guard::webhook {
namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

FileWatcher::FileWatcher(std::vector<std::filesystem::path> paths, Callback onChange,
                         std::chrono::milliseconds interval)
    : paths_(std::move(paths)),
      onChange_(std::move(onChange)),
      interval_(interval),
      reported_(paths_.size()) {
  for (std::size_t i = 0; i < paths_.size(); ++i) reported_[i] = observe(i);
}

FileWatcher::~FileWatcher() {
  stop();
}

void FileWatcher::start() {
  std::lock_guard lock(stateMutex_);
  if (thread_.joinable()) return;
  stopRequested_ = false;
  thread_ = std::thread([this] { run(); });
}

void FileWatcher::stop() {
  {
    std::lock_guard lock(stateMutex_);
    stopRequested_ = true;
  }
  wakeUp_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void FileWatcher::run() {
  std::unique_lock lock(stateMutex_);
  while (!wakeUp_.wait_for(lock, interval_, [this] { return stopRequested_; })) {
    lock.unlock();
    pollOnce();
    lock.lock();
  }
}

bool FileWatcher::pollOnce() {
  std::lock_guard lock(pollMutex_);
  std::vector<std::optional<Digest>> current(paths_.size());
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    // An unreadable file (e.g. between an editor's delete and create) keeps its last content.
    current[i] = observe(i);
    if (!current[i]) current[i] = reported_[i];
  }
  if (current == reported_) {
    pending_.reset();
    return false;
  }
  if (!pending_ || *pending_ != current) {
    pending_ = std::move(current);
    return false;
  }
  reported_ = std::move(current);
  pending_.reset();
  try {
    onChange_();
  } catch (const std::exception& e) {
    spdlog::error("file change callback failed: {}", e.what());
  } catch (...) {
    spdlog::error("file change callback failed");
  }
  return true;
}

std::optional<FileWatcher::Digest> FileWatcher::observe(std::size_t index) const {
  // open() resolves the whole symlink chain at once, so the bytes read all come from one file
  // even while `..data` is being swapped.
  FileDescriptor file(::open(paths_[index].c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) return std::nullopt;
  struct stat info {};
  if (::fstat(file.get(), &info) != 0 || !S_ISREG(info.st_mode)) return std::nullopt;

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> hash(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!hash || EVP_DigestInit_ex(hash.get(), EVP_sha256(), nullptr) != 1) return std::nullopt;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(file.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    if (EVP_DigestUpdate(hash.get(), buffer, static_cast<std::size_t>(n)) != 1) return std::nullopt;
  }
  Digest digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(hash.get(), digest.data(), &length) != 1 || length != digest.size()) {
    return std::nullopt;
  }
  return digest;
}

}  // namespace hybrid_guard::webhook
