#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "webhook/result.h"

namespace hybrid_guard::webhook {

// One epoll instance and a way to wake it from another thread. Watchers are called on the thread
// that calls waitAndDispatch(); everything else but wake() belongs to that thread too.
class EventLoop {
 public:
  class Watcher {
   public:
    // `events`: the EPOLL* bits that fired.
    virtual void onEvents(std::uint32_t events) = 0;

   protected:
    ~Watcher() = default;
  };

  [[nodiscard]] static Result<std::unique_ptr<EventLoop>> create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // `watcher` must outlive its registration and the batch being dispatched when it is removed:
  // events already collected for it are still delivered. Unwatch before closing fd, since a
  // forked child's copy of fd would keep it registered.
  [[nodiscard]] Status watch(int fd, std::uint32_t events, Watcher& watcher);
  void unwatch(int fd);

  // Waits up to `timeout` (null: without limit) for events and hands each to its watcher; returns
  // after one batch, or when woken.
  void waitAndDispatch(std::optional<std::chrono::milliseconds> timeout);

  // Any thread: the current or next waitAndDispatch() returns promptly.
  void wake();

 private:
  EventLoop(int epoll, int wakeFd) : epoll_(epoll), wakeFd_(wakeFd) {}

  int epoll_;
  int wakeFd_;
};

}  // namespace hybrid_guard::webhook
