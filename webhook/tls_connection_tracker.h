#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <mutex>
#include <unordered_set>

namespace hybrid_guard::webhook {

// Knows the live TLS connections of one server SSL_CTX and whether each is idle, i.e. between
// two requests on a keep-alive connection, so that a shutdown need not wait for idle connections
// to time out. httplib 0.11.4 gives no handle on its connections: a worker parked on an idle
// keep-alive connection only notices Server::stop() after the keep-alive timeout.
//
// A connection is busy from the first TLS record read after the handshake or after the last
// response until markIdle() reports the next response written: the same notion of "idle" as Go's
// http.Server.Shutdown.
class TlsConnectionTracker {
 public:
  TlsConnectionTracker() = default;
  TlsConnectionTracker(const TlsConnectionTracker&) = delete;
  TlsConnectionTracker& operator=(const TlsConnectionTracker&) = delete;

  // Installs the message and info callbacks on `context`, before any SSL is made from it. The
  // tracker must outlive every SSL of `context`.
  void attach(SSL_CTX& context);

  // A response was written on `ssl`.
  static void markIdle(const SSL* ssl);

  // Shuts the read side of each idle connection's socket: its worker then sees end-of-stream at
  // once and closes it. Busy connections are left to finish. Returns how many were shut.
  std::size_t shutIdleConnections();

  std::size_t liveConnections() const;
  std::size_t idleConnections() const;

 private:
  struct Connection;

  static void onMessage(int writing, int version, int contentType, const void* buffer,
                        std::size_t length, SSL* ssl, void* tracker);
  static void onInfo(const SSL* ssl, int where, int value);
  static void onFree(void* parent, void* connection, CRYPTO_EX_DATA* data, int index, long argl,
                     void* argp);
  static int exDataIndex();

  void forget(Connection* connection);

  mutable std::mutex mutex_;
  std::unordered_set<Connection*> connections_;
};

}  // namespace hybrid_guard::webhook
