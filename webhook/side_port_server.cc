#include "webhook/side_port_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <exception>

namespace hybrid_guard::webhook {
namespace {

constexpr const char* kPrometheusTextFormat = "text/plain; version=0.0.4";

// Runs a callback; a throwing callback becomes a 500 instead of crashing a worker.
template <typename Produce>
void answer(httplib::Response& response, const char* what, Produce produce) {
  try {
    produce();
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", what, e.what());
    response.status = 500;
    response.set_content(std::string(what) + " failed\n", "text/plain");
  } catch (...) {
    spdlog::error("{} failed", what);
    response.status = 500;
    response.set_content(std::string(what) + " failed\n", "text/plain");
  }
}

}  // namespace

SidePortServer::SidePortServer(SidePortHandlers handlers, std::size_t threads)
    : handlers_(std::move(handlers)),
      threads_(threads),
      server_(std::make_unique<httplib::Server>()) {
  httplib::Server& server = *server_;
  server.set_keep_alive_max_count(1);
  server.set_keep_alive_timeout(5);  // also how long a connection may stay silent
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_payload_max_length(64 * 1024);

  server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok", "text/plain");
  });
  server.Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    answer(response, "readiness check", [&] {
      std::optional<std::string> reason =
          handlers_.notReadyReason ? handlers_.notReadyReason() : std::nullopt;
      if (reason) {
        response.status = 503;
        response.set_content("not ready: " + *reason, "text/plain");
      } else {
        response.set_content("ok", "text/plain");
      }
    });
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    answer(response, "metrics rendering", [&] {
      response.set_content(handlers_.metrics ? handlers_.metrics() : std::string(),
                           kPrometheusTextFormat);
    });
  });
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& response) {
        if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        response.set_content(response.status == 404 ? "not found" : "error", "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }));
}

SidePortServer::~SidePortServer() {
  stop();
}

Status SidePortServer::start(const std::string& host, int port) {
  return runner_.start(*server_, host, port, threads_);
}

void SidePortServer::stop() {
  runner_.stop();
}

}  // namespace hybrid_guard::webhook
