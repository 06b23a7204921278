#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>

#include "webhook/deadline_queue.h"
#include "webhook/event_loop.h"
#include "webhook/http_connection.h"
#include "webhook/https_server.h"
#include "webhook/result.h"

namespace hybrid_guard::webhook {

// What the workers of one HttpsServer share; all of it outlives them.
struct ServerShared {
  SSL_CTX& tls;
  int listenFd;
  const HttpsServerOptions& options;
  const AdmissionHandler& handler;
  const RejectionObserver& onRejection;
  std::atomic<std::size_t>& liveConnections;
  std::atomic<std::size_t>& idleConnections;
  HandlerPool* pool;  // null: handlers run on the loops
};

// One event-loop thread: takes connections from the shared listening socket (while the server is
// under its connection cap), serves them, and enforces their deadlines.
class ServerWorker final : private EventLoop::Watcher {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ServerWorker>> create(const ServerShared& shared);
  ~ServerWorker();
  ServerWorker(const ServerWorker&) = delete;
  ServerWorker& operator=(const ServerWorker&) = delete;

  void start();
  // Any thread. Stops accepting, closes connections without a request in progress, finishes the
  // others; the thread ends once none is left.
  void requestStop();
  void join();

 private:
  ServerWorker(const ServerShared& shared, std::unique_ptr<EventLoop> loop);

  void run();
  void onEvents(std::uint32_t events) override;  // the listening socket
  void acceptConnections();
  void refuse(int fd);
  void pauseAccepting(std::chrono::steady_clock::time_point now);
  void stopAccepting();
  void stopServing();
  void expireDeadlines(std::chrono::steady_clock::time_point now);
  void resumeUnfinished();
  void deliverAnswers();
  void destroyClosed();
  std::optional<std::chrono::milliseconds> timeUntilNextDeadline(
      std::chrono::steady_clock::time_point now) const;

  ServerShared shared_;
  std::unique_ptr<EventLoop> loop_;
  HandlerMailbox mailbox_;
  DeadlineQueue busyDeadlines_;
  DeadlineQueue idleDeadlines_;
  ConnectionContext context_;
  std::unordered_map<HttpConnection*, std::unique_ptr<HttpConnection>> connections_;
  bool accepting_ = false;
  std::optional<std::chrono::steady_clock::time_point> acceptPausedUntil_;
  std::size_t refusedSinceLog_ = 0;
  std::optional<std::chrono::steady_clock::time_point> lastRefusalLog_;
  std::atomic<bool> stopRequested_{false};
  std::thread thread_;
};

}  // namespace hybrid_guard::webhook
