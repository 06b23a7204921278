#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "webhook/certificate_store.h"
#include "webhook/result.h"
#include "webhook/server_runner.h"
#include "webhook/tls_connection_tracker.h"

namespace httplib {
class ContentReader;
class SSLServer;
struct Request;
struct Response;
}  // namespace httplib

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

// Called for each well-formed POST with the whole body; runs on a server worker thread.
using AdmissionHandler = std::function<HttpResponse(Endpoint endpoint, std::string_view body)>;

// A request the server answered itself with an error, before or instead of the handler.
struct Rejection {
  std::optional<Endpoint> endpoint;  // null for an unknown path
  std::string method;
  std::string path;
  int status;
  std::string reason;
};
using RejectionObserver = std::function<void(const Rejection& rejection)>;

struct HttpsServerOptions {
  std::size_t maxBodyBytes = 8 * 1024 * 1024;
  std::size_t threads = 32;  // one per connection being served: httplib is thread-per-connection
  std::chrono::seconds idleTimeout{60};
  std::chrono::milliseconds readTimeout{5000};  // per read, not per request
  std::chrono::milliseconds writeTimeout{5000};
  std::size_t maxRequestsPerConnection = 100000;
};

// The admission endpoints over TLS (see certificate_store.h for the TLS settings).
//
// The server answers bad input itself, checked in this order: unknown path 404; a method other
// than POST 405 (with Allow); a Content-Type other than application/json (any case, parameters
// allowed) or a Content-Encoding other than identity 415; neither Content-Length nor chunked 411;
// malformed framing 400; a body over the limit 413, as soon as the declared Content-Length shows
// it (a chunked body as soon as it crosses the limit). Every error body is {"error": "..."}. A
// connection whose request was refused is closed after the answer, so an unread body is never
// parsed as a request.
class HttpsServer {
 public:
  HttpsServer(std::shared_ptr<const CertificateStore> certificates, AdmissionHandler handler,
              HttpsServerOptions options = {}, RejectionObserver onRejection = {});
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // Binds host:port (port 0: any free port) and serves until stop().
  [[nodiscard]] Status start(const std::string& host, int port);
  int port() const { return runner_.port(); }
  // Stops accepting, closes idle keep-alive connections, lets in-flight requests finish.
  void stop();

  // TLS connections open now, and those of them between requests.
  std::size_t liveConnections() const { return connections_.liveConnections(); }
  std::size_t idleConnections() const { return connections_.idleConnections(); }

 private:
  void installRoutes();
  // The first check the request fails, if any: what needs only the request line and headers.
  std::optional<Rejection> screen(const httplib::Request& request) const;
  void reject(const httplib::Request& request, httplib::Response& response,
              Rejection rejection) const;
  void notify(const Rejection& rejection) const;
  void readBodyAndHandle(Endpoint endpoint, const httplib::Request& request,
                         httplib::Response& response, const httplib::ContentReader& readBody) const;

  std::shared_ptr<const CertificateStore> certificates_;
  AdmissionHandler handler_;
  HttpsServerOptions options_;
  RejectionObserver onRejection_;
  std::string tlsSetupError_;
  TlsConnectionTracker connections_;  // outlives server_, whose SSLs point at it
  std::unique_ptr<httplib::SSLServer> server_;
  ServerRunner runner_;
};

}  // namespace hybrid_guard::webhook
