#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <thread>

#include "webhook/result.h"

namespace httplib {
class Server;
}

namespace hybrid_guard::webhook {

// Runs the accept loop of an httplib server on a thread of its own, with a fixed pool of workers.
class ServerRunner {
 public:
  ServerRunner() = default;
  ~ServerRunner() { stop(); }
  ServerRunner(const ServerRunner&) = delete;
  ServerRunner& operator=(const ServerRunner&) = delete;

  // Binds host:port (port 0: any free port) and returns once the server accepts connections.
  // `server` must outlive the runner or its stop().
  [[nodiscard]] Status start(httplib::Server& server, const std::string& host, int port,
                             std::size_t threads);
  // The bound port; -1 before start().
  int port() const { return port_; }
  // Stops accepting, lets the workers finish the requests they are serving, joins every thread.
  // `afterAcceptStopped` runs between the two, e.g. to wake workers parked on idle connections.
  void stop(const std::function<void()>& afterAcceptStopped = {});

 private:
  httplib::Server* server_ = nullptr;
  std::thread thread_;
  int port_ = -1;
};

}  // namespace hybrid_guard::webhook
