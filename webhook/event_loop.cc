#include "webhook/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace hybrid_guard::webhook {

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  using R = Result<std::unique_ptr<EventLoop>>;
  int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) return R::failure(std::string("epoll_create1: ") + std::strerror(errno));
  int wakeFd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd < 0) {
    std::string error = std::string("eventfd: ") + std::strerror(errno);
    ::close(epoll);
    return R::failure(error);
  }
  std::unique_ptr<EventLoop> loop(new EventLoop(epoll, wakeFd));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = nullptr;  // the wake-up descriptor: no watcher
  if (::epoll_ctl(epoll, EPOLL_CTL_ADD, wakeFd, &event) != 0) {
    return R::failure(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  return R::success(std::move(loop));
}

EventLoop::~EventLoop() {
  ::close(wakeFd_);
  ::close(epoll_);
}

Status EventLoop::watch(int fd, std::uint32_t events, Watcher& watcher) {
  epoll_event event{};
  event.events = events;
  event.data.ptr = &watcher;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) {
    return Status::failure(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  return Status::success();
}

void EventLoop::unwatch(int fd) {
  ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::waitAndDispatch(std::optional<std::chrono::milliseconds> timeout) {
  std::array<epoll_event, 128> events;
  int waitMs = timeout ? static_cast<int>(std::max<long long>(0, timeout->count())) : -1;
  int ready = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), waitMs);
  for (int i = 0; i < ready; ++i) {
    if (auto* watcher = static_cast<Watcher*>(events[i].data.ptr)) {
      watcher->onEvents(events[i].events);
    } else {
      std::uint64_t count = 0;
      [[maybe_unused]] ssize_t n = ::read(wakeFd_, &count, sizeof count);
    }
  }
}

void EventLoop::wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wakeFd_, &one, sizeof one);
}

}  // namespace hybrid_guard::webhook
