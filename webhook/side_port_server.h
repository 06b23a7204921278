#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "webhook/result.h"
#include "webhook/server_runner.h"

namespace httplib {
class Server;
}

namespace hybrid_guard::webhook {

struct SidePortHandlers {
  // Null when ready, else why not (e.g. "policy not loaded"). Unset: always ready.
  std::function<std::optional<std::string>()> notReadyReason;
  // Prometheus text exposition. Unset: an empty body.
  std::function<std::string()> metrics;
};

// Plain-HTTP side port: GET /healthz (200 "ok" while the process serves), GET /readyz (200 "ok"
// or 503 with the reason), GET /metrics (text/plain; version=0.0.4).
//
// Each connection carries one request, so that no idle keep-alive connection holds one of the few
// workers or delays stop().
class SidePortServer {
 public:
  explicit SidePortServer(SidePortHandlers handlers, std::size_t threads = 4);
  ~SidePortServer();
  SidePortServer(const SidePortServer&) = delete;
  SidePortServer& operator=(const SidePortServer&) = delete;

  [[nodiscard]] Status start(const std::string& host, int port);
  int port() const { return runner_.port(); }
  void stop();

 private:
  SidePortHandlers handlers_;
  std::size_t threads_;
  std::unique_ptr<httplib::Server> server_;
  ServerRunner runner_;
};

}  // namespace hybrid_guard::webhook
