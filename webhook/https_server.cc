#include "webhook/https_server.h"

#include <netdb.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "webhook/handler_pool.h"
#include "webhook/server_worker.h"

namespace hybrid_guard::webhook {
namespace {

std::size_t usableCpus() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 0) {
    return static_cast<std::size_t>(CPU_COUNT(&cpus));
  }
  return std::max(1u, std::thread::hardware_concurrency());
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
      onRejection_(std::move(onRejection)) {}

HttpsServer::~HttpsServer() {
  stop();
}

Status HttpsServer::start(const std::string& host, int port) {
  if (listenFd_ >= 0) return Status::failure("server already started");
  if (!certificates_) return Status::failure("no certificate store");
  if (!certificates_->current()) return Status::failure("no serving certificate loaded");
  if (options_.requestTimeout.count() <= 0 || options_.idleTimeout.count() <= 0) {
    return Status::failure("the request and idle timeouts must be positive");
  }
  if (options_.maxConnections == 0) return Status::failure("the connection cap must be positive");

  tls_.reset(SSL_CTX_new(TLS_server_method()));
  if (!tls_) return Status::failure("TLS setup failed: " + drainOpenSslErrors());
  if (Status configured = configureServerTls(*tls_, *certificates_); !configured) {
    return Status::failure("TLS setup failed: " + configured.error());
  }
  // Partial writes: an answer larger than one record goes out as the socket takes it. Read-ahead:
  // one read takes what has arrived, rather than a record header and then its body.
  SSL_CTX_set_mode(tls_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(tls_.get(), 1);
  // A client that drops the connection without close_notify is simply gone: requests are framed.
  SSL_CTX_set_options(tls_.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);

  if (Status listening = listenOn(host, port); !listening) return listening;

  // The event loops log through spdlog's default logger, which spdlog creates on first use: create
  // it here, before their threads, not lazily from two of them at once (TSan reported that race).
  spdlog::default_logger_raw();
  if (options_.handlerThreads > 0) pool_ = std::make_unique<HandlerPool>(options_.handlerThreads);
  ServerShared shared{*tls_,        listenFd_, options_, handler_,
                      onRejection_, live_,     idle_,    pool_.get()};
  const std::size_t count = options_.workers > 0 ? options_.workers : usableCpus();
  for (std::size_t i = 0; i < count; ++i) {
    auto worker = ServerWorker::create(shared);
    if (!worker) {
      workers_.clear();
      pool_.reset();
      ::close(listenFd_);
      listenFd_ = -1;
      port_ = -1;
      return Status::failure("cannot start the event loops: " + worker.error());
    }
    workers_.push_back(std::move(worker).value());
  }
  for (auto& worker : workers_) worker->start();
  return Status::success();
}

Status HttpsServer::listenOn(const std::string& host, int port) {
  const std::string where = host + ":" + std::to_string(port);
  if (port < 0 || port > 65535) return Status::failure("cannot listen on " + where + ": bad port");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  const std::string service = std::to_string(port);
  if (int failed =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &addresses);
      failed != 0) {
    return Status::failure("cannot listen on " + where + ": " + ::gai_strerror(failed));
  }
  std::string error = "no address";
  for (addrinfo* address = addresses; address != nullptr; address = address->ai_next) {
    int fd = ::socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      address->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    // Not SO_REUSEPORT, which would let a second process bind the same port and silently take
    // half of the connections; SO_REUSEADDR alone still allows a quick restart.
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_storage bound{};
    socklen_t boundLength = sizeof bound;
    if (::bind(fd, address->ai_addr, address->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &boundLength) == 0) {
      listenFd_ = fd;
      port_ = ntohs(bound.ss_family == AF_INET6
                        ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
      break;
    }
    error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(addresses);
  if (listenFd_ < 0) return Status::failure("cannot listen on " + where + ": " + error);
  return Status::success();
}

void HttpsServer::stop() {
  if (listenFd_ < 0) return;
  for (auto& worker : workers_) worker->requestStop();
  // Shutting the listening socket down takes it out of the listening state: new connections are
  // refused from now on, while the descriptor stays valid for workers still watching it.
  ::shutdown(listenFd_, SHUT_RDWR);
  for (auto& worker : workers_) worker->join();
  workers_.clear();
  pool_.reset();
  ::close(listenFd_);
  listenFd_ = -1;
}

}  // namespace hybrid_guard::webhook
