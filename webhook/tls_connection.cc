#include "webhook/tls_connection.h"

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace hybrid_guard::webhook {
namespace {

// A TLS record carries at most 16 KiB of plaintext.
constexpr std::size_t kReadChunk = 16 * 1024;

}  // namespace

Result<TlsConnection> TlsConnection::accept(SSL_CTX& context, int fd) {
  UniqueSsl ssl(SSL_new(&context));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    ::close(fd);
    return Result<TlsConnection>::failure("cannot set up TLS: " + drainOpenSslErrors());
  }
  SSL_set_accept_state(ssl.get());
  return Result<TlsConnection>::success(TlsConnection(std::move(ssl), fd));
}

TlsConnection::TlsConnection(TlsConnection&& other) noexcept
    : ssl_(std::move(other.ssl_)), fd_(other.fd_) {
  other.fd_ = -1;
}

TlsConnection::~TlsConnection() {
  ssl_.reset();
  if (fd_ >= 0) ::close(fd_);
}

TlsIo TlsConnection::outcome(int result) {
  switch (SSL_get_error(ssl_.get(), result)) {
    case SSL_ERROR_WANT_READ:
      return TlsIo::WantRead;
    case SSL_ERROR_WANT_WRITE:
      return TlsIo::WantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return TlsIo::Closed;
    default:
      // Leave no error behind for the next connection served on this thread.
      ERR_clear_error();
      return TlsIo::Failed;
  }
}

TlsIo TlsConnection::handshake() {
  int result = SSL_do_handshake(ssl_.get());
  return result == 1 ? TlsIo::Done : outcome(result);
}

TlsIo TlsConnection::read(std::string& into) {
  char chunk[kReadChunk];
  std::size_t n = 0;
  int result = SSL_read_ex(ssl_.get(), chunk, sizeof chunk, &n);
  if (result != 1) return outcome(result);
  into.append(chunk, n);
  return TlsIo::Done;
}

TlsIo TlsConnection::write(std::string_view bytes, std::size_t& written) {
  written = 0;
  int result = SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &written);
  return result == 1 ? TlsIo::Done : outcome(result);
}

void TlsConnection::shutdownOutput() {
  if (SSL_is_init_finished(ssl_.get()) && SSL_shutdown(ssl_.get()) < 0) ERR_clear_error();
  ::shutdown(fd_, SHUT_WR);
}

TlsIo TlsConnection::discardInput() {
  char chunk[kReadChunk];
  ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n > 0) return TlsIo::Done;
  if (n == 0) return TlsIo::Closed;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return TlsIo::WantRead;
  return TlsIo::Failed;
}

}  // namespace hybrid_guard::webhook
