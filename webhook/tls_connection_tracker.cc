#include "webhook/tls_connection_tracker.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>

namespace hybrid_guard::webhook {

namespace {

bool hasUnreadBytes(int fd) {
  int pending = 0;
  return ::ioctl(fd, FIONREAD, &pending) == 0 && pending > 0;
}

}  // namespace

struct TlsConnectionTracker::Connection {
  TlsConnectionTracker* tracker = nullptr;
  int fd = -1;
  std::atomic<std::uint64_t> recordsRead{0};
  std::atomic<std::uint64_t> recordsReadWhenIdle{UINT64_MAX};  // not idle before the handshake
  bool handshakeDone = false;  // only touched by the connection's own thread

  bool idle() const {
    return recordsRead.load(std::memory_order_acquire) ==
           recordsReadWhenIdle.load(std::memory_order_acquire);
  }
};

int TlsConnectionTracker::exDataIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, onFree);
  return index;
}

void TlsConnectionTracker::attach(SSL_CTX& context) {
  exDataIndex();
  SSL_CTX_set_msg_callback(&context, onMessage);
  SSL_CTX_set_msg_callback_arg(&context, this);
  SSL_CTX_set_info_callback(&context, onInfo);
}

void TlsConnectionTracker::onMessage(int writing, int, int contentType, const void*, std::size_t,
                                     SSL* ssl, void* tracker) {
  if (writing != 0 || contentType != SSL3_RT_HEADER) return;
  auto* connection = static_cast<Connection*>(SSL_get_ex_data(ssl, exDataIndex()));
  if (connection == nullptr) {
    // The first record of a connection is the ClientHello: register it.
    connection = new Connection;
    connection->tracker = static_cast<TlsConnectionTracker*>(tracker);
    connection->fd = SSL_get_fd(ssl);
    {
      std::lock_guard lock(connection->tracker->mutex_);
      connection->tracker->connections_.insert(connection);
    }
    SSL_set_ex_data(ssl, exDataIndex(), connection);
  }
  connection->recordsRead.fetch_add(1, std::memory_order_acq_rel);
}

void TlsConnectionTracker::onInfo(const SSL* ssl, int where, int) {
  // TLS 1.3 also reports post-handshake messages (key updates) as handshakes; those can arrive
  // in the middle of a request, so only the first handshake makes a connection idle.
  if ((where & SSL_CB_HANDSHAKE_DONE) == 0) return;
  auto* connection = static_cast<Connection*>(SSL_get_ex_data(ssl, exDataIndex()));
  if (connection == nullptr || connection->handshakeDone) return;
  connection->handshakeDone = true;
  markIdle(ssl);
}

void TlsConnectionTracker::markIdle(const SSL* ssl) {
  if (ssl == nullptr) return;
  auto* connection = static_cast<Connection*>(SSL_get_ex_data(ssl, exDataIndex()));
  if (connection == nullptr) return;
  connection->recordsReadWhenIdle.store(connection->recordsRead.load(std::memory_order_acquire),
                                        std::memory_order_release);
}

void TlsConnectionTracker::onFree(void*, void* connection, CRYPTO_EX_DATA*, int, long, void*) {
  if (connection == nullptr) return;
  auto* tracked = static_cast<Connection*>(connection);
  tracked->tracker->forget(tracked);
  delete tracked;
}

void TlsConnectionTracker::forget(Connection* connection) {
  std::lock_guard lock(mutex_);
  connections_.erase(connection);
}

std::size_t TlsConnectionTracker::shutIdleConnections() {
  // Holding the lock keeps each socket open meanwhile: httplib frees the SSL (which forgets the
  // connection, under this lock) before it closes the socket, so an fd here is never reused.
  std::lock_guard lock(mutex_);
  std::size_t shut = 0;
  for (Connection* connection : connections_) {
    // Bytes already received but not yet read are the start of a request: let it be served.
    if (!connection->idle() || connection->fd < 0 || hasUnreadBytes(connection->fd)) continue;
    if (::shutdown(connection->fd, SHUT_RD) == 0) ++shut;
  }
  return shut;
}

std::size_t TlsConnectionTracker::idleConnections() const {
  std::lock_guard lock(mutex_);
  std::size_t idle = 0;
  for (const Connection* connection : connections_) idle += connection->idle() ? 1 : 0;
  return idle;
}

std::size_t TlsConnectionTracker::liveConnections() const {
  std::lock_guard lock(mutex_);
  return connections_.size();
}

}  // namespace hybrid_guard::webhook
