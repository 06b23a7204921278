#include "webhook/server_runner.h"

#include <httplib.h>
#include <sys/socket.h>

#include <condition_variable>
#include <memory>
#include <mutex>

namespace hybrid_guard::webhook {
namespace {

// httplib's default sets SO_REUSEPORT, which would let a second process bind the same port and
// silently take half of the connections; SO_REUSEADDR alone still allows a quick restart.
void reuseAddressOnly(socket_t socket) {
  int yes = 1;
  ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

struct StartSignal {
  std::mutex mutex;
  std::condition_variable changed;
  bool done = false;

  void notify() {
    {
      std::lock_guard lock(mutex);
      done = true;
    }
    changed.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [this] { return done; });
  }
};

}  // namespace

Status ServerRunner::start(httplib::Server& server, const std::string& host, int port,
                           std::size_t threads) {
  if (thread_.joinable()) return Status::failure("server already started");
  if (threads == 0) return Status::failure("a server needs at least one worker thread");
  server.set_socket_options(reuseAddressOnly);
  int bound = -1;
  if (port == 0) {
    bound = server.bind_to_any_port(host);
  } else if (port > 0 && port <= 65535 && server.bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) {
    return Status::failure("cannot listen on " + host + ":" + std::to_string(port) +
                           " (address in use, not local, or invalid)");
  }

  // httplib sets is_running() and then asks for its task queue before accepting: the factory is
  // where we learn that stop() will be effective.
  auto started = std::make_shared<StartSignal>();
  server.new_task_queue = [threads, started] {
    started->notify();
    return new httplib::ThreadPool(threads);
  };
  server_ = &server;
  port_ = bound;
  thread_ = std::thread([&server, started] {
    server.listen_after_bind();
    started->notify();  // also when listening failed at once
  });
  started->wait();
  if (!server.is_running()) {
    thread_.join();
    port_ = -1;
    return Status::failure("cannot accept on " + host + ":" + std::to_string(bound));
  }
  return Status::success();
}

void ServerRunner::stop(const std::function<void()>& afterAcceptStopped) {
  if (!thread_.joinable()) return;
  server_->stop();
  if (afterAcceptStopped) afterAcceptStopped();
  thread_.join();
}

}  // namespace hybrid_guard::webhook
