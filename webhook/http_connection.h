#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "webhook/deadline_queue.h"
#include "webhook/event_loop.h"
#include "webhook/http_parser.h"
#include "webhook/https_server.h"
#include "webhook/request_screen.h"
#include "webhook/tls_connection.h"

namespace hybrid_guard::webhook {

class HttpConnection;
class HandlerPool;

// Answers computed on the handler pool, on their way back to the loop that owns the connection.
class HandlerMailbox {
 public:
  explicit HandlerMailbox(EventLoop& loop) : loop_(loop) {}
  // Any thread: queues the answer and wakes the loop.
  void post(HttpConnection* connection, HttpResponse response);
  // The loop's thread: what has arrived since the last call.
  std::vector<std::pair<HttpConnection*, HttpResponse>> take();

 private:
  EventLoop& loop_;
  std::mutex mutex_;
  std::vector<std::pair<HttpConnection*, HttpResponse>> answers_;
};

// What the connections of one event loop share: the server's settings, the loop, its timers, and
// the lists through which a connection hands itself back to the loop.
struct ConnectionContext {
  const AdmissionHandler& handler;
  const RejectionObserver& onRejection;
  const HttpsServerOptions& options;
  EventLoop& loop;
  DeadlineQueue& busyDeadlines;  // handshake, request, answer, close: options.requestTimeout
  DeadlineQueue& idleDeadlines;  // keep-alive between requests: options.idleTimeout
  std::atomic<std::size_t>& idleConnections;  // of the whole server
  HandlerPool* pool = nullptr;                // null: the handler runs on the loop's own thread
  HandlerMailbox* mailbox = nullptr;          // where the pool's answers come back, with a pool
  bool stopping = false;
  std::vector<HttpConnection*> closed{};      // to be destroyed once the current batch is done
  std::vector<HttpConnection*> unfinished{};  // stopped early to let others run; to resume soon
  RequestHead head{};                         // parsing scratch, reused across requests

  // Calls onRejection; an observer that throws is logged, not propagated.
  void notify(const Rejection& rejection) const;
};

// One HTTP/1.1 keep-alive connection over TLS, driven by edge-triggered readiness events: every
// event runs it until its socket would block. Requests are served one at a time, in order, so
// pipelining is safe; a refused request ends the connection once its answer is written.
class HttpConnection final : public EventLoop::Watcher, public DeadlineQueue::Entry {
 public:
  HttpConnection(ConnectionContext& context, TlsConnection tls);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  int fd() const { return tls_.fd(); }
  bool closed() const { return phase_ == Phase::Closed; }

  void onEvents(std::uint32_t events) override;
  // Goes on after having yielded its turn (see ConnectionContext::unfinished).
  void resume() { drive(); }
  // Its deadline (see ConnectionContext) passed.
  void onDeadline();
  // The server stops: close now unless a request is in progress; that one is finished first.
  void stop();
  // The handler pool's answer to the request it was given.
  void complete(HttpResponse response);

 private:
  enum class Phase {
    Handshake,
    Idle,      // between requests
    Busy,      // a request arriving or being answered
    Handling,  // the handler pool has the request: no deadline, nothing read until it answers
    Closing,   // the last answer going out, then the peer's bytes discarded until it closes
    Closed,
  };

  // Whether drive() goes on, or waits for the next event.
  enum class Step { Continue, Wait };

  // Runs the connection until its socket would block (or it has had its turn).
  void drive();
  Step step(int& reads);
  Step handshake();
  Step flushOutbox();
  Step discardInput(int& reads);
  Step readInput(int& reads);
  // Counts a read; past the budget, puts the connection aside to resume after the others.
  bool endTurn(int& reads);
  Step waitFor(TlsIo io);
  Step closeAndWait(bool notifyPeer);
  // Makes what progress the buffered bytes allow: a request head, a body, an answer.
  bool serveBuffered();
  bool readHead();
  bool readBody();
  void answer(std::string_view body);
  void deliver(const HttpResponse& response);
  void reject(Rejection rejection);
  void finishRequest();
  void beginRequest();
  // `notifyPeer`: send close_notify and FIN first (when nothing is left unread).
  void close(bool notifyPeer);
  // Also arms the deadline that goes with `phase` and keeps the server's idle count.
  void enter(Phase phase);

  ConnectionContext& context_;
  TlsConnection tls_;
  Phase phase_ = Phase::Handshake;
  std::string inbox_;   // received, not yet consumed
  std::string outbox_;  // to send, from outboxSent_ on
  std::size_t outboxSent_ = 0;
  RequestHeadParser headParser_;
  std::optional<AdmissionRequest> request_;  // its head was read; its body is arriving
  ChunkedBodyDecoder chunkedDecoder_;
  std::string chunkedBody_;
  bool keepAlive_ = true;
  bool lastAnswerQueued_ = false;  // the connection closes once the outbox is sent
  bool outputShut_ = false;
};

}  // namespace hybrid_guard::webhook
