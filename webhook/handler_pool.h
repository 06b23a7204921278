#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hybrid_guard::webhook {

// Threads for handler calls that may block (in cluster mode a quota reservation is a round trip to
// the API server), so that an event loop never waits on one and its other connections keep being
// served. Tasks run in submission order across the threads; the destructor runs those queued,
// then joins.
class HandlerPool {
 public:
  explicit HandlerPool(std::size_t threads);
  ~HandlerPool();
  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;

  void submit(std::function<void()> task);

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace hybrid_guard::webhook
