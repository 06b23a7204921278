#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webhook/certificate_store.h"
#include "webhook/openssl_util.h"
#include "webhook/result.h"

namespace hybrid_guard::webhook {

enum class Endpoint { Validate, Mutate };

std::string_view endpointName(Endpoint endpoint);  // "validate", "mutate"
std::string_view endpointPath(Endpoint endpoint);  // "/validate", "/mutate"
std::optional<Endpoint> endpointForPath(std::string_view path);

struct HttpResponse {
  int status;
  std::string body;
  std::string contentType = "application/json";
};

// Called for each well-formed POST with the whole body: on the event-loop thread that serves the
// connection (while it runs, that loop's other connections wait, so it must not block), or, with
// HttpsServerOptions::handlerThreads, on a pool thread; then it may block, but must bound its own
// time, since no deadline interrupts it.
using AdmissionHandler = std::function<HttpResponse(Endpoint endpoint, std::string_view body)>;

// A request the server answered itself with an error, before or instead of the handler.
struct Rejection {
  std::optional<Endpoint> endpoint;  // null for an unknown path or an unreadable request
  std::string method;                // empty when the request line could not be read
  std::string path;
  int status;
  std::string reason;
};
using RejectionObserver = std::function<void(const Rejection& rejection)>;

struct HttpsServerOptions {
  std::size_t maxBodyBytes = 8 * 1024 * 1024;
  // Event-loop threads; 0: one per CPU this process may run on.
  std::size_t workers = 0;
  // A request must arrive whole within it, counted from its first byte; it also bounds the TLS
  // handshake, the writing of an answer, and the close after a refusal.
  std::chrono::milliseconds requestTimeout{5000};
  // A keep-alive connection without a request in progress is closed after it.
  std::chrono::milliseconds idleTimeout{60000};
  // Connections beyond it are accepted and closed at once, before any TLS: the client sees the
  // connection end during its handshake.
  std::size_t maxConnections = 512;
  // Threads that run the handler, for a handler that may block; 0: it runs on the event loops.
  std::size_t handlerThreads = 0;
};

class HandlerPool;
class ServerWorker;

// The admission endpoints over TLS (see certificate_store.h for the TLS settings): HTTP/1.1 with
// keep-alive and pipelining, served by epoll event loops with non-blocking OpenSSL.
//
// The server answers bad input itself, checked in this order: unknown path 404; a method other
// than POST 405 (with Allow); a Content-Type other than application/json (any case, parameters
// allowed) or a Content-Encoding other than identity 415; neither Content-Length nor chunked 411;
// malformed framing 400; a body over the limit 413, as soon as the declared Content-Length shows
// it (a chunked body as soon as a chunk's size would cross it). A request line or header section
// it cannot read is a 400 (414, 431, 505 for the too long, too large, or another HTTP version); a
// request not arrived whole within the request timeout is a 408. Every error body is
// {"error": "..."}, and the observer hears of each. A connection whose request was refused is
// closed after the answer, so an unread body is never parsed as a request.
class HttpsServer {
 public:
  HttpsServer(std::shared_ptr<const CertificateStore> certificates, AdmissionHandler handler,
              HttpsServerOptions options = {}, RejectionObserver onRejection = {});
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // Binds host:port (port 0: any free port) and serves until stop().
  [[nodiscard]] Status start(const std::string& host, int port);
  int port() const { return port_; }
  // Stops accepting (new connections are refused), closes connections without a request in
  // progress, lets the requests in progress finish, and returns once every thread has ended.
  void stop();

  // TLS connections open now, and those of them between requests.
  std::size_t liveConnections() const { return live_.load(std::memory_order_relaxed); }
  std::size_t idleConnections() const { return idle_.load(std::memory_order_relaxed); }

 private:
  [[nodiscard]] Status listenOn(const std::string& host, int port);

  std::shared_ptr<const CertificateStore> certificates_;
  AdmissionHandler handler_;
  HttpsServerOptions options_;
  RejectionObserver onRejection_;
  UniqueSslCtx tls_;
  int listenFd_ = -1;
  int port_ = -1;
  std::atomic<std::size_t> live_{0};
  std::atomic<std::size_t> idle_{0};
  std::unique_ptr<HandlerPool> pool_;  // stopped after the workers, which wait for its answers
  std::vector<std::unique_ptr<ServerWorker>> workers_;
};

}  // namespace hybrid_guard::webhook
