#include "webhook/file_watcher.h"

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>

#include "catch2/catch.hpp"
#include "test/support/test_support.h"
#include "test/webhook/webhook_test_support.h"

using namespace hybrid_guard::webhook;
using hybrid_guard::test::TempDir;
using hybrid_guard::webhook::testing::eventually;
using hybrid_guard::webhook::testing::ProjectedVolume;
namespace fs = std::filesystem;

namespace {

void overwriteInPlace(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  REQUIRE(out.good());
}

void replaceByRename(const fs::path& path, const std::string& content) {
  fs::path temporary = path.string() + ".swp";
  overwriteInPlace(temporary, content);
  fs::rename(temporary, path);
}

// Counts callbacks and lets a test wait for the next one.
class ChangeLog {
 public:
  FileWatcher::Callback callback() {
    return [this] {
      {
        std::lock_guard lock(mutex_);
        ++count_;
      }
      changed_.notify_all();
    };
  }
  int count() {
    std::lock_guard lock(mutex_);
    return count_;
  }
  bool waitFor(int expected, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return count_ >= expected; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int count_ = 0;
};

}  // namespace

TEST_CASE("a change is reported once two polls agree on the new content", "[watcher]") {
  TempDir dir;
  auto file = dir.write("policy.yaml", "version: 1\n");
  ChangeLog changes;
  FileWatcher watcher({file}, changes.callback(), std::chrono::milliseconds(50));

  CHECK_FALSE(watcher.pollOnce());  // baseline: nothing changed
  overwriteInPlace(file, "version: 2\n");
  CHECK_FALSE(watcher.pollOnce());  // seen once: might still be mid-write
  CHECK(watcher.pollOnce());
  CHECK(changes.count() == 1);
  CHECK_FALSE(watcher.pollOnce());  // reported once only

  SECTION("a change that keeps changing is reported when it settles") {
    overwriteInPlace(file, "version: 3\n");
    CHECK_FALSE(watcher.pollOnce());
    overwriteInPlace(file, "version: 4\n");
    CHECK_FALSE(watcher.pollOnce());
    CHECK(watcher.pollOnce());
    CHECK(changes.count() == 2);
  }
  SECTION("rewriting the same content is no change") {
    overwriteInPlace(file, "version: 2\n");
    replaceByRename(file, "version: 2\n");
    CHECK_FALSE(watcher.pollOnce());
    CHECK_FALSE(watcher.pollOnce());
    CHECK(changes.count() == 1);
  }
  SECTION("a change reverted before it settled is no change") {
    overwriteInPlace(file, "version: 9\n");
    CHECK_FALSE(watcher.pollOnce());
    overwriteInPlace(file, "version: 2\n");
    CHECK_FALSE(watcher.pollOnce());
    CHECK_FALSE(watcher.pollOnce());
    CHECK(changes.count() == 1);
  }
}

TEST_CASE("a same-size rewrite that keeps the mtime is still seen", "[watcher]") {
  TempDir dir;
  auto file = dir.write("tls.crt", "AAAA");
  auto mtime = fs::last_write_time(file);
  ChangeLog changes;
  FileWatcher watcher({file}, changes.callback());
  // As `cp -p`, `tar` or `rsync -t` leave it: same inode, same size, same modification time.
  overwriteInPlace(file, "BBBB");
  fs::last_write_time(file, mtime);
  watcher.pollOnce();
  CHECK(watcher.pollOnce());
}

TEST_CASE("an editor replacing the file is seen", "[watcher]") {
  TempDir dir;
  auto file = dir.write("tls.crt", "one");
  ChangeLog changes;
  FileWatcher watcher({file}, changes.callback());
  replaceByRename(file, "two");
  watcher.pollOnce();
  CHECK(watcher.pollOnce());
}

TEST_CASE("a missing file is no change until it comes back different", "[watcher]") {
  TempDir dir;
  auto file = dir.write("tls.key", "key-one");
  ChangeLog changes;
  FileWatcher watcher({file}, changes.callback());
  fs::remove(file);
  CHECK_FALSE(watcher.pollOnce());
  CHECK_FALSE(watcher.pollOnce());
  overwriteInPlace(file, "key-one");
  CHECK_FALSE(watcher.pollOnce());
  CHECK_FALSE(watcher.pollOnce());
  fs::remove(file);
  watcher.pollOnce();
  overwriteInPlace(file, "key-two");
  watcher.pollOnce();
  CHECK(watcher.pollOnce());
  CHECK(changes.count() == 1);
}

TEST_CASE("a Kubernetes ..data swap is seen through the symlinks", "[watcher]") {
  TempDir dir;
  ProjectedVolume volume(dir.path());
  volume.publish({{"tls.crt", "cert-A"}, {"tls.key", "key-A"}});
  ChangeLog changes;
  FileWatcher watcher({volume.path("tls.crt"), volume.path("tls.key")}, changes.callback());
  CHECK_FALSE(watcher.pollOnce());

  volume.publish({{"tls.crt", "cert-B"}, {"tls.key", "key-B"}});
  // The links themselves did not change: only what ..data points to.
  CHECK(fs::read_symlink(volume.path("tls.crt")) == fs::path("..data/tls.crt"));
  watcher.pollOnce();
  CHECK(watcher.pollOnce());
  CHECK(changes.count() == 1);

  volume.publish({{"tls.crt", "cert-B"}, {"tls.key", "key-B"}});  // same content, new directory
  CHECK_FALSE(watcher.pollOnce());
  CHECK_FALSE(watcher.pollOnce());
}

TEST_CASE("the watcher thread reports changes and stops promptly", "[watcher]") {
  TempDir dir;
  auto file = dir.write("policy.yaml", "a");
  ChangeLog changes;

  SECTION("reports on its own") {
    FileWatcher watcher({file}, changes.callback(), std::chrono::milliseconds(20));
    watcher.start();
    overwriteInPlace(file, "b");
    REQUIRE(changes.waitFor(1));
    overwriteInPlace(file, "c");
    REQUIRE(changes.waitFor(2));
    watcher.stop();
    overwriteInPlace(file, "d");
    CHECK_FALSE(changes.waitFor(3, std::chrono::milliseconds(200)));
  }
  SECTION("stop does not wait for the interval") {
    FileWatcher watcher({file}, changes.callback(), std::chrono::hours(1));
    watcher.start();
    auto before = std::chrono::steady_clock::now();
    watcher.stop();
    CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(1));
  }
  SECTION("a throwing callback does not stop the watching") {
    std::atomic<int> calls{0};
    FileWatcher watcher(
        {file},
        [&] {
          ++calls;
          throw std::runtime_error("reload failed");
        },
        std::chrono::milliseconds(20));
    watcher.start();
    overwriteInPlace(file, "x");
    REQUIRE(eventually([&] { return calls.load() == 1; }));
    overwriteInPlace(file, "y");
    REQUIRE(eventually([&] { return calls.load() == 2; }));
  }
}
