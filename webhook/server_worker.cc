#include "webhook/server_worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hybrid_guard::webhook {
namespace {

using Clock = std::chrono::steady_clock;

// Connections one wake-up accepts before the connections already open get their turn.
constexpr int kAcceptsPerTurn = 64;
// How long accepting pauses when the process is out of descriptors or memory.
constexpr std::chrono::milliseconds kAcceptPause{100};
// Refused connections are logged at most this often.
constexpr std::chrono::seconds kRefusalLogInterval{10};

std::optional<Clock::time_point> earliest(std::optional<Clock::time_point> a,
                                          std::optional<Clock::time_point> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

}  // namespace

Result<std::unique_ptr<ServerWorker>> ServerWorker::create(const ServerShared& shared) {
  using R = Result<std::unique_ptr<ServerWorker>>;
  auto loop = EventLoop::create();
  if (!loop) return R::failure(loop.error());
  std::unique_ptr<ServerWorker> worker(new ServerWorker(shared, std::move(loop).value()));
  // Exclusive: a new connection wakes one waiting worker, not all of them.
  if (Status watched = worker->loop_->watch(shared.listenFd, EPOLLIN | EPOLLEXCLUSIVE, *worker);
      !watched) {
    return R::failure(watched.error());
  }
  worker->accepting_ = true;
  return R::success(std::move(worker));
}

ServerWorker::ServerWorker(const ServerShared& shared, std::unique_ptr<EventLoop> loop)
    : shared_(shared),
      loop_(std::move(loop)),
      mailbox_(*loop_),
      busyDeadlines_(shared.options.requestTimeout),
      idleDeadlines_(shared.options.idleTimeout),
      context_{shared.handler, shared.onRejection, shared.options,        *loop_,
               busyDeadlines_, idleDeadlines_,     shared.idleConnections} {
  context_.pool = shared.pool;
  context_.mailbox = &mailbox_;
}

ServerWorker::~ServerWorker() {
  requestStop();
  join();
  shared_.liveConnections.fetch_sub(connections_.size(), std::memory_order_relaxed);
}

void ServerWorker::start() {
  thread_ = std::thread([this] { run(); });
}

void ServerWorker::requestStop() {
  stopRequested_.store(true, std::memory_order_release);
  loop_->wake();
}

void ServerWorker::join() {
  if (thread_.joinable()) thread_.join();
}

void ServerWorker::run() {
  // A write to a connection the peer has reset raises SIGPIPE, which ends the process unless
  // handled. Blocked on this thread, it stays pending and the write fails with EPIPE instead.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

  bool stopping = false;
  while (true) {
    if (!stopping && stopRequested_.load(std::memory_order_acquire)) {
      stopping = true;
      stopServing();
    }
    resumeUnfinished();
    destroyClosed();
    if (stopping && connections_.empty()) return;

    Clock::time_point now = Clock::now();
    if (acceptPausedUntil_ && now >= *acceptPausedUntil_) {
      acceptPausedUntil_.reset();
      accepting_ = loop_->watch(shared_.listenFd, EPOLLIN | EPOLLEXCLUSIVE, *this).ok();
      if (!accepting_) pauseAccepting(now);
    }
    auto timeout =
        context_.unfinished.empty() ? timeUntilNextDeadline(now) : std::chrono::milliseconds(0);
    loop_->waitAndDispatch(timeout);
    deliverAnswers();
    expireDeadlines(Clock::now());
  }
}

void ServerWorker::onEvents(std::uint32_t) {
  acceptConnections();
}

void ServerWorker::acceptConnections() {
  for (int i = 0; i < kAcceptsPerTurn && accepting_; ++i) {
    int fd = ::accept4(shared_.listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int error = errno;
      if (error == EAGAIN || error == EWOULDBLOCK) return;
      if (error == EINTR || error == ECONNABORTED) continue;
      if (stopRequested_.load(std::memory_order_acquire)) {
        stopAccepting();  // the listening socket was shut down
      } else {
        spdlog::error("cannot accept connections ({}); retrying in {} ms", std::strerror(error),
                      kAcceptPause.count());
        pauseAccepting(Clock::now());
      }
      return;
    }
    if (shared_.liveConnections.fetch_add(1, std::memory_order_relaxed) >=
        shared_.options.maxConnections) {
      shared_.liveConnections.fetch_sub(1, std::memory_order_relaxed);
      refuse(fd);
      continue;
    }
    int noDelay = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &noDelay, sizeof noDelay);
    auto tls = TlsConnection::accept(shared_.tls, fd);
    if (!tls) {
      shared_.liveConnections.fetch_sub(1, std::memory_order_relaxed);
      spdlog::error("{}", tls.error());
      continue;
    }
    auto connection = std::make_unique<HttpConnection>(context_, std::move(tls).value());
    if (Status watched = loop_->watch(fd, EPOLLIN | EPOLLOUT | EPOLLET, *connection); !watched) {
      shared_.liveConnections.fetch_sub(1, std::memory_order_relaxed);
      spdlog::error("cannot watch a new connection: {}", watched.error());
      continue;
    }
    HttpConnection* key = connection.get();
    connections_.emplace(key, std::move(connection));
  }
}

// Over the cap: closed before any TLS, so that refusing costs next to nothing.
void ServerWorker::refuse(int fd) {
  ::close(fd);
  ++refusedSinceLog_;
  Clock::time_point now = Clock::now();
  if (lastRefusalLog_ && now - *lastRefusalLog_ < kRefusalLogInterval) return;
  spdlog::warn("connection cap of {} reached: refused {} connection(s)",
               shared_.options.maxConnections, refusedSinceLog_);
  refusedSinceLog_ = 0;
  lastRefusalLog_ = now;
}

void ServerWorker::pauseAccepting(Clock::time_point now) {
  stopAccepting();
  acceptPausedUntil_ = now + kAcceptPause;
}

void ServerWorker::stopAccepting() {
  if (!accepting_) return;
  loop_->unwatch(shared_.listenFd);
  accepting_ = false;
}

void ServerWorker::stopServing() {
  context_.stopping = true;
  stopAccepting();
  acceptPausedUntil_.reset();
  for (auto& [connection, owned] : connections_) connection->stop();
}

void ServerWorker::expireDeadlines(Clock::time_point now) {
  // A connection whose deadline passed may arm a new one, always later than `now`.
  while (DeadlineQueue::Entry* entry = busyDeadlines_.popDue(now)) {
    static_cast<HttpConnection*>(entry)->onDeadline();
  }
  while (DeadlineQueue::Entry* entry = idleDeadlines_.popDue(now)) {
    static_cast<HttpConnection*>(entry)->onDeadline();
  }
}

void ServerWorker::resumeUnfinished() {
  std::vector<HttpConnection*> batch;
  batch.swap(context_.unfinished);
  for (HttpConnection* connection : batch) {
    if (!connection->closed()) connection->resume();
  }
}

void ServerWorker::deliverAnswers() {
  for (auto& [connection, response] : mailbox_.take()) connection->complete(std::move(response));
}

void ServerWorker::destroyClosed() {
  for (HttpConnection* connection : context_.closed) {
    connections_.erase(connection);
    shared_.liveConnections.fetch_sub(1, std::memory_order_relaxed);
  }
  context_.closed.clear();
}

std::optional<std::chrono::milliseconds> ServerWorker::timeUntilNextDeadline(
    Clock::time_point now) const {
  std::optional<Clock::time_point> next =
      earliest(earliest(busyDeadlines_.nextDue(), idleDeadlines_.nextDue()), acceptPausedUntil_);
  if (!next) return std::nullopt;
  if (*next <= now) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(*next - now);
}

}  // namespace hybrid_guard::webhook
