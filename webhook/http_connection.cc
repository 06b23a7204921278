#include "webhook/http_connection.h"

#include <spdlog/spdlog.h>

#include <exception>

#include "webhook/handler_pool.h"
#include "webhook/http_response.h"

namespace hybrid_guard::webhook {
namespace {

// Reads one connection may make before the others of its loop get a turn.
constexpr int kReadsPerTurn = 32;
// A buffer grown by one large request is given back rather than kept for the connection's life.
constexpr std::size_t kRetainedBufferBytes = 64 * 1024;

void releaseIfLarge(std::string& buffer) {
  if (buffer.empty() && buffer.capacity() > kRetainedBufferBytes) std::string().swap(buffer);
}

// The handler's answer; a handler that throws is logged and answered with a 500.
HttpResponse callHandler(const AdmissionHandler& handler, Endpoint endpoint,
                         std::string_view body) {
  try {
    return handler(endpoint, body);
  } catch (const std::exception& e) {
    spdlog::error("{} handler failed: {}", endpointName(endpoint), e.what());
  } catch (...) {
    spdlog::error("{} handler failed", endpointName(endpoint));
  }
  return HttpResponse{500, errorBody("internal error")};
}

}  // namespace

void HandlerMailbox::post(HttpConnection* connection, HttpResponse response) {
  {
    std::lock_guard lock(mutex_);
    answers_.emplace_back(connection, std::move(response));
  }
  loop_.wake();
}

std::vector<std::pair<HttpConnection*, HttpResponse>> HandlerMailbox::take() {
  std::vector<std::pair<HttpConnection*, HttpResponse>> taken;
  std::lock_guard lock(mutex_);
  taken.swap(answers_);
  return taken;
}

void ConnectionContext::notify(const Rejection& rejection) const {
  if (!onRejection) return;
  try {
    onRejection(rejection);
  } catch (const std::exception& e) {
    spdlog::error("rejection observer failed: {}", e.what());
  } catch (...) {
    spdlog::error("rejection observer failed");
  }
}

HttpConnection::HttpConnection(ConnectionContext& context, TlsConnection tls)
    : context_(context), tls_(std::move(tls)) {
  enter(Phase::Handshake);
}

HttpConnection::~HttpConnection() {
  if (phase_ == Phase::Idle) context_.idleConnections.fetch_sub(1, std::memory_order_relaxed);
}

void HttpConnection::onEvents(std::uint32_t) {
  drive();
}

void HttpConnection::drive() {
  int reads = 0;
  while (phase_ != Phase::Closed && step(reads) == Step::Continue) {
  }
}

// Output first: what was answered goes out before anything more is read, so requests are served
// one at a time and the buffers stay bounded.
HttpConnection::Step HttpConnection::step(int& reads) {
  if (phase_ == Phase::Handshake) return handshake();
  if (phase_ == Phase::Handling) return Step::Wait;  // edge-triggered: complete() drives again
  if (outboxSent_ < outbox_.size()) return flushOutbox();
  if (phase_ == Phase::Closing) return discardInput(reads);
  if (serveBuffered()) return Step::Continue;
  if (context_.stopping && phase_ == Phase::Idle) return closeAndWait(true);
  return readInput(reads);
}

HttpConnection::Step HttpConnection::handshake() {
  TlsIo io = tls_.handshake();
  if (io == TlsIo::Done) {
    enter(Phase::Idle);
    return Step::Continue;
  }
  return waitFor(io);
}

HttpConnection::Step HttpConnection::flushOutbox() {
  std::size_t written = 0;
  TlsIo io = tls_.write(std::string_view(outbox_).substr(outboxSent_), written);
  if (io != TlsIo::Done) return waitFor(io);
  outboxSent_ += written;
  if (outboxSent_ < outbox_.size()) return Step::Continue;
  outbox_.clear();
  outboxSent_ = 0;
  releaseIfLarge(outbox_);
  if (lastAnswerQueued_) {
    enter(Phase::Closing);
  } else if (!request_ && inbox_.empty()) {
    enter(Phase::Idle);
  }
  return Step::Continue;
}

// Closing the socket with unread bytes would reset the connection, and a reset can destroy the
// last answer before the client reads it: say goodbye, then drop what comes until the client
// closes too (or the deadline passes).
HttpConnection::Step HttpConnection::discardInput(int& reads) {
  if (!outputShut_) {
    tls_.shutdownOutput();
    outputShut_ = true;
  }
  if (context_.stopping) return closeAndWait(false);
  if (endTurn(reads)) return Step::Wait;
  TlsIo io = tls_.discardInput();
  return io == TlsIo::Done ? Step::Continue : waitFor(io);
}

HttpConnection::Step HttpConnection::readInput(int& reads) {
  if (endTurn(reads)) return Step::Wait;
  TlsIo io = tls_.read(inbox_);
  if (io != TlsIo::Done) return waitFor(io);
  if (phase_ == Phase::Idle) beginRequest();
  return Step::Continue;
}

bool HttpConnection::endTurn(int& reads) {
  if (++reads <= kReadsPerTurn) return false;
  context_.unfinished.push_back(this);
  return true;
}

// After an operation that did not complete: wait for readiness, or give up on the connection (the
// end of the stream, or an error: either way nobody is left to answer).
HttpConnection::Step HttpConnection::waitFor(TlsIo io) {
  if (io == TlsIo::WantRead || io == TlsIo::WantWrite) return Step::Wait;
  return closeAndWait(false);
}

HttpConnection::Step HttpConnection::closeAndWait(bool notifyPeer) {
  close(notifyPeer);
  return Step::Wait;
}

bool HttpConnection::serveBuffered() {
  if (lastAnswerQueued_) return false;  // nothing after a last answer is ever read
  return request_ ? readBody() : readHead();
}

bool HttpConnection::readHead() {
  if (inbox_.empty()) return false;
  RequestHead& head = context_.head;
  RequestHeadParser::Outcome parsed = headParser_.parse(inbox_, head);
  if (parsed.state == RequestHeadParser::State::Incomplete) return false;
  if (parsed.state == RequestHeadParser::State::Invalid) {
    reject(Rejection{std::nullopt, "", "", parsed.status, parsed.reason});
    return true;
  }
  keepAlive_ = head.minorVersion >= 1 ? !head.hasToken("Connection", "close")
                                      : head.hasToken("Connection", "keep-alive");
  auto screened = screenRequest(head, context_.options.maxBodyBytes);
  if (auto* rejection = std::get_if<Rejection>(&screened)) {
    reject(std::move(*rejection));
    return true;
  }
  request_ = std::get<AdmissionRequest>(screened);
  inbox_.erase(0, parsed.size);
  headParser_.reset();
  const bool bodyExpected = request_->chunked || request_->contentLength > 0;
  if (request_->expectsContinue && bodyExpected && inbox_.empty()) appendContinue(outbox_);
  return true;
}

bool HttpConnection::readBody() {
  const AdmissionRequest& request = *request_;
  if (!request.chunked) {
    if (inbox_.size() < request.contentLength) return false;
    answer(std::string_view(inbox_).substr(0, request.contentLength));
    inbox_.erase(0, request.contentLength);
    finishRequest();
    return true;
  }
  if (inbox_.empty()) return false;
  const std::size_t limit = context_.options.maxBodyBytes;
  std::size_t consumed = 0;
  ChunkedBodyDecoder::State state = chunkedDecoder_.decode(inbox_, consumed, chunkedBody_, limit);
  inbox_.erase(0, consumed);
  auto refuse = [&](int status, std::string reason) {
    reject(Rejection{request.endpoint, "POST", std::string(endpointPath(request.endpoint)), status,
                     std::move(reason)});
  };
  switch (state) {
    case ChunkedBodyDecoder::State::NeedMore:
      return false;
    case ChunkedBodyDecoder::State::Done:
      answer(chunkedBody_);
      finishRequest();
      return true;
    case ChunkedBodyDecoder::State::Invalid:
      refuse(400, "malformed chunked body");
      return true;
    case ChunkedBodyDecoder::State::TooLarge:
      refuse(413, "request body exceeds the limit of " + std::to_string(limit) + " bytes");
      return true;
  }
  return false;
}

void HttpConnection::answer(std::string_view body) {
  const Endpoint endpoint = request_->endpoint;
  if (context_.pool == nullptr) return deliver(callHandler(context_.handler, endpoint, body));
  // The connection stays alive while Handling (no deadline, stop() waits, nothing is read), so
  // the pool may hold on to it until it posts the answer back.
  enter(Phase::Handling);
  context_.pool->submit([this, endpoint, body = std::string(body), &context = context_] {
    context.mailbox->post(this, callHandler(context.handler, endpoint, body));
  });
}

void HttpConnection::complete(HttpResponse response) {
  deliver(response);
  enter(Phase::Busy);  // a deadline for sending it
  drive();
}

void HttpConnection::deliver(const HttpResponse& response) {
  lastAnswerQueued_ = !keepAlive_ || context_.stopping;
  appendResponse(outbox_, response.status, response.contentType, response.body, lastAnswerQueued_);
}

void HttpConnection::reject(Rejection rejection) {
  context_.notify(rejection);
  appendResponse(outbox_, rejection.status, "application/json", errorBody(rejection.reason),
                 /*close=*/true, rejection.status == 405 ? "Allow: POST\r\n" : "");
  lastAnswerQueued_ = true;
  request_.reset();
  inbox_.clear();
}

void HttpConnection::finishRequest() {
  request_.reset();
  headParser_.reset();
  chunkedDecoder_ = {};
  chunkedBody_.clear();
  releaseIfLarge(chunkedBody_);
  releaseIfLarge(inbox_);
  // A pipelined request already begun: its time counts from now (or from the pool's answer).
  if (!lastAnswerQueued_ && !inbox_.empty() && phase_ != Phase::Handling) beginRequest();
}

void HttpConnection::beginRequest() {
  enter(Phase::Busy);
}

void HttpConnection::onDeadline() {
  switch (phase_) {
    case Phase::Busy:
      if (outbox_.empty() && !lastAnswerQueued_) {
        std::optional<Endpoint> endpoint;
        if (request_) endpoint = request_->endpoint;
        reject(Rejection{endpoint, endpoint ? "POST" : "",
                         endpoint ? std::string(endpointPath(*endpoint)) : "", 408,
                         "the request did not arrive within " +
                             std::to_string(context_.options.requestTimeout.count()) + " ms"});
        enter(Phase::Busy);  // a deadline for sending that answer
        drive();
        return;
      }
      return close(false);  // the answer could not be sent in time
    case Phase::Idle:
      return close(true);
    case Phase::Handshake:
    case Phase::Closing:
      return close(false);
    case Phase::Handling:  // never armed: the handler bounds its own time
    case Phase::Closed:
      return;
  }
}

void HttpConnection::stop() {
  switch (phase_) {
    case Phase::Handshake:
      return close(false);
    case Phase::Idle:
      return close(true);
    case Phase::Closing:
      if (outboxSent_ >= outbox_.size()) close(false);
      return;
    case Phase::Busy:  // answered with "Connection: close" once it has arrived
    case Phase::Handling:
    case Phase::Closed:
      return;
  }
}

void HttpConnection::close(bool notifyPeer) {
  if (phase_ == Phase::Closed) return;
  if (notifyPeer && !outputShut_) tls_.shutdownOutput();
  context_.loop.unwatch(fd());
  enter(Phase::Closed);
  context_.closed.push_back(this);
}

void HttpConnection::enter(Phase phase) {
  if ((phase_ == Phase::Idle) != (phase == Phase::Idle)) {
    if (phase == Phase::Idle) {
      context_.idleConnections.fetch_add(1, std::memory_order_relaxed);
    } else {
      context_.idleConnections.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  phase_ = phase;
  auto now = std::chrono::steady_clock::now();
  switch (phase) {
    case Phase::Handshake:
    case Phase::Busy:
    case Phase::Closing:
      context_.busyDeadlines.arm(*this, now);
      break;
    case Phase::Idle:
      context_.idleDeadlines.arm(*this, now);
      break;
    case Phase::Handling:
    case Phase::Closed:
      disarm();
      break;
  }
}

}  // namespace hybrid_guard::webhook
