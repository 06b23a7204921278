#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "webhook/openssl_util.h"
#include "webhook/result.h"

namespace hybrid_guard::webhook {

// What a non-blocking TLS operation came to.
enum class TlsIo {
  Done,       // handshake complete, bytes read or written
  WantRead,   // retry once the socket is readable
  WantWrite,  // retry once the socket is writable
  Closed,     // the peer ended the stream
  Failed,     // protocol or socket error: the connection is unusable
};

// The server side of one TLS connection on a non-blocking socket; owns the socket.
class TlsConnection {
 public:
  // Takes `fd` (connected, non-blocking) in any case; fails only when OpenSSL is out of memory.
  [[nodiscard]] static Result<TlsConnection> accept(SSL_CTX& context, int fd);
  ~TlsConnection();
  TlsConnection(TlsConnection&& other) noexcept;
  TlsConnection& operator=(TlsConnection&&) = delete;
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  int fd() const { return fd_; }

  TlsIo handshake();
  // Appends the plaintext that one read yields (Done: at least one byte).
  TlsIo read(std::string& into);
  // Writes a prefix of `bytes` (Done: `written` > 0) as few records as the size allows.
  TlsIo write(std::string_view bytes, std::size_t& written);
  // Sends close_notify (when the handshake was done) and the TCP FIN, best effort; whatever the
  // peer sends afterwards is for discardInput() only.
  void shutdownOutput();
  // Drops the bytes waiting on the socket, undecrypted. Closed at the peer's end of stream.
  TlsIo discardInput();

 private:
  TlsConnection(UniqueSsl ssl, int fd) : ssl_(std::move(ssl)), fd_(fd) {}
  TlsIo outcome(int result);

  UniqueSsl ssl_;
  int fd_;
};

}  // namespace hybrid_guard::webhook
