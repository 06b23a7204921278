#include "webhook/https_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <charconv>
#include <exception>
#include <nlohmann/json.hpp>

namespace hybrid_guard::webhook {
namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  auto isSpace = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// application/json, whatever the case, with or without parameters such as charset.
bool isJsonMediaType(std::string_view contentType) {
  std::string_view mediaType = contentType.substr(0, contentType.find(';'));
  return equalsIgnoringCase(trim(mediaType), "application/json");
}

std::optional<std::uint64_t> parseContentLength(std::string_view value) {
  value = trim(value);
  std::uint64_t length = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return length;
}

std::string reasonPhrase(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 408:
      return "request timeout";
    case 411:
      return "length required";
    case 413:
      return "payload too large";
    case 414:
      return "URI too long";
    case 415:
      return "unsupported media type";
    case 416:
      return "range not satisfiable";
    case 417:
      return "expectation failed";
    case 431:
      return "request header fields too large";
    case 500:
      return "internal error";
    default:
      return "HTTP error " + std::to_string(status);
  }
}

std::string errorBody(std::string_view message) {
  // Messages can quote request bytes: replace invalid UTF-8 rather than throw.
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
}

// Read nothing more from this connection once the answer is out: httplib 0.11.4 cannot be told to
// close a connection, and would parse an unread body as the next request. OpenSSL discards what
// it reads once a shutdown was "received", so the next read reports end of stream; writing the
// answer is unaffected.
void closeAfterResponse(const httplib::Request& request, httplib::Response& response) {
  response.set_header("Connection", "close");
  if (request.ssl != nullptr) {
    // httplib exposes the connection's SSL as const; it is not a const object.
    SSL* ssl = const_cast<SSL*>(request.ssl);
    SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
  }
}

// After a "Connection: close" answer was written: wake the worker at once (its wait for the next
// request sees end of stream) rather than when the client hangs up or the idle timeout passes.
void stopReading(const httplib::Request& request) {
  if (request.ssl == nullptr) return;
  int fd = SSL_get_fd(request.ssl);
  if (fd >= 0) ::shutdown(fd, SHUT_RD);
}

}  // namespace

std::string_view endpointName(Endpoint endpoint) {
  return endpoint == Endpoint::Validate ? "validate" : "mutate";
}

std::string_view endpointPath(Endpoint endpoint) {
  return endpoint == Endpoint::Validate ? "/validate" : "/mutate";
}

std::optional<Endpoint> endpointForPath(std::string_view path) {
  for (Endpoint endpoint : {Endpoint::Validate, Endpoint::Mutate}) {
    if (path == endpointPath(endpoint)) return endpoint;
  }
  return std::nullopt;
}

HttpsServer::HttpsServer(std::shared_ptr<const CertificateStore> certificates,
                         AdmissionHandler handler, HttpsServerOptions options,
                         RejectionObserver onRejection)
    : certificates_(std::move(certificates)),
      handler_(std::move(handler)),
      options_(options),
      onRejection_(std::move(onRejection)) {
  server_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX& context) {
    if (!certificates_) {
      tlsSetupError_ = "no certificate store";
      return false;
    }
    if (Status configured = configureServerTls(context, *certificates_); !configured) {
      tlsSetupError_ = configured.error();
      return false;
    }
    connections_.attach(context);
    return true;
  });
  installRoutes();
}

HttpsServer::~HttpsServer() {
  stop();
}

Status HttpsServer::start(const std::string& host, int port) {
  if (!server_->is_valid()) return Status::failure("TLS setup failed: " + tlsSetupError_);
  if (!certificates_->current()) return Status::failure("no serving certificate loaded");
  return runner_.start(*server_, host, port, options_.threads);
}

void HttpsServer::stop() {
  runner_.stop([this] {
    std::size_t shut = connections_.shutIdleConnections();
    if (shut > 0) spdlog::debug("closed {} idle connection(s) for shutdown", shut);
  });
}

void HttpsServer::installRoutes() {
  httplib::SSLServer& server = *server_;
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(options_.maxRequestsPerConnection);
  server.set_keep_alive_timeout(options_.idleTimeout.count());
  server.set_read_timeout(options_.readTimeout);
  server.set_write_timeout(options_.writeTimeout);
  // Only bodies with a Content-Length reach httplib's own limit; screen() refuses them first.
  server.set_payload_max_length(options_.maxBodyBytes);

  // Refuse before the body is read (and before "100 Continue" invites the client to send it).
  server.set_expect_100_continue_handler(
      [this](const httplib::Request& request, httplib::Response& response) {
        if (auto rejection = screen(request)) {
          int status = rejection->status;
          reject(request, response, std::move(*rejection));
          return status;
        }
        return 100;
      });
  server.set_pre_routing_handler(
      [this](const httplib::Request& request, httplib::Response& response) {
        if (auto rejection = screen(request)) {
          reject(request, response, std::move(*rejection));
          return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
      });
  for (Endpoint endpoint : {Endpoint::Validate, Endpoint::Mutate}) {
    server.Post(std::string(endpointPath(endpoint)),
                [this, endpoint](const httplib::Request& request, httplib::Response& response,
                                 const httplib::ContentReader& readBody) {
                  readBodyAndHandle(endpoint, request, response, readBody);
                });
  }
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& request, httplib::Response& response) {
        // Reporting Handled also makes httplib send a Content-Length, which it leaves out of
        // the answer to an "Expect: 100-continue" otherwise.
        if (!response.body.empty()) return httplib::Server::HandlerResponse::Handled;
        // An error httplib produced itself: malformed request line or headers, URI too long...
        std::string reason = reasonPhrase(response.status);
        response.set_content(errorBody(reason), "application/json");
        notify(Rejection{endpointForPath(request.path), request.method, request.path,
                         response.status, reason});
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
        response.status = 500;
        response.set_content(errorBody("internal error"), "application/json");
      });
  // Runs once a response was written.
  server.set_logger([](const httplib::Request& request, const httplib::Response& response) {
    if (response.get_header_value("Connection") == "close") {
      stopReading(request);
    } else {
      TlsConnectionTracker::markIdle(request.ssl);
    }
  });
}

std::optional<Rejection> HttpsServer::screen(const httplib::Request& request) const {
  auto refuse = [&](std::optional<Endpoint> endpoint, int status, std::string reason) {
    return Rejection{endpoint, request.method, request.path, status, std::move(reason)};
  };
  std::optional<Endpoint> endpoint = endpointForPath(request.path);
  if (!endpoint) return refuse(endpoint, 404, "no such endpoint: use POST /validate or /mutate");
  if (request.method != "POST") {
    return refuse(endpoint, 405, "method " + request.method + " not allowed: use POST");
  }
  if (!isJsonMediaType(request.get_header_value("Content-Type"))) {
    return refuse(endpoint, 415, "Content-Type must be application/json");
  }
  if (std::string encoding = request.get_header_value("Content-Encoding");
      !encoding.empty() && !equalsIgnoringCase(trim(encoding), "identity")) {
    return refuse(endpoint, 415, "Content-Encoding " + encoding + " is not supported");
  }
  const bool hasLength = request.has_header("Content-Length");
  if (request.has_header("Transfer-Encoding")) {
    if (request.get_header_value_count("Transfer-Encoding") != 1 ||
        !equalsIgnoringCase(trim(request.get_header_value("Transfer-Encoding")), "chunked")) {
      return refuse(endpoint, 400, "unsupported Transfer-Encoding");
    }
    if (hasLength) {
      return refuse(endpoint, 400, "both Content-Length and Transfer-Encoding given");
    }
    return std::nullopt;  // the body's size is checked while it is read
  }
  if (!hasLength) return refuse(endpoint, 411, "Content-Length required");
  std::optional<std::uint64_t> length =
      parseContentLength(request.get_header_value("Content-Length"));
  if (!length || request.get_header_value_count("Content-Length") != 1) {
    return refuse(endpoint, 400, "invalid Content-Length");
  }
  if (*length > options_.maxBodyBytes) {
    return refuse(endpoint, 413,
                  "request body of " + std::to_string(*length) + " bytes exceeds the limit of " +
                      std::to_string(options_.maxBodyBytes) + " bytes");
  }
  return std::nullopt;
}

void HttpsServer::reject(const httplib::Request& request, httplib::Response& response,
                         Rejection rejection) const {
  response.status = rejection.status;
  if (rejection.status == 405) response.set_header("Allow", "POST");
  response.set_content(errorBody(rejection.reason), "application/json");
  closeAfterResponse(request, response);
  notify(rejection);
}

void HttpsServer::notify(const Rejection& rejection) const {
  if (!onRejection_) return;
  try {
    onRejection_(rejection);
  } catch (const std::exception& e) {
    spdlog::error("rejection observer failed: {}", e.what());
  } catch (...) {
    spdlog::error("rejection observer failed");
  }
}

void HttpsServer::readBodyAndHandle(Endpoint endpoint, const httplib::Request& request,
                                    httplib::Response& response,
                                    const httplib::ContentReader& readBody) const {
  std::string body;
  if (auto length = parseContentLength(request.get_header_value("Content-Length"))) {
    body.reserve(static_cast<std::size_t>(*length));  // screen() bounded it
  }
  bool tooLarge = false;
  bool complete = readBody([&](const char* data, std::size_t size) {
    if (size > options_.maxBodyBytes - body.size()) {
      tooLarge = true;
      return false;
    }
    body.append(data, size);
    return true;
  });
  if (tooLarge) {
    reject(request, response,
           Rejection{endpoint, request.method, request.path, 413,
                     "request body exceeds the limit of " + std::to_string(options_.maxBodyBytes) +
                         " bytes"});
    return;
  }
  if (!complete) {
    reject(request, response,
           Rejection{endpoint, request.method, request.path, 400, "incomplete request body"});
    return;
  }

  HttpResponse answer{500, errorBody("internal error")};
  try {
    answer = handler_(endpoint, body);
  } catch (const std::exception& e) {
    spdlog::error("{} handler failed: {}", endpointName(endpoint), e.what());
  } catch (...) {
    spdlog::error("{} handler failed", endpointName(endpoint));
  }
  response.status = answer.status;
  response.set_content(answer.body, answer.contentType);
}

}  // namespace hybrid_guard::webhook
