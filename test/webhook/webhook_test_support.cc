#include "test/webhook/webhook_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace hybrid_guard::webhook::testing {
namespace {

CertificateOptions withLocalNames(CertificateOptions options) {
  if (options.dnsNames.empty() && options.ipAddresses.empty()) {
    options.dnsNames = {"localhost"};
    options.ipAddresses = {"127.0.0.1"};
  }
  return options;
}

std::string lowerCase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Parses one Content-Length framed response from the front of `buffer`; null if incomplete.
std::optional<HttpReply> takeReply(std::string& buffer) {
  auto headerEnd = buffer.find("\r\n\r\n");
  if (headerEnd == std::string::npos) return std::nullopt;
  HttpReply reply;
  std::string head = buffer.substr(0, headerEnd);
  auto lineEnd = head.find("\r\n");
  std::string statusLine = head.substr(0, lineEnd);
  if (statusLine.size() < 12) throw std::runtime_error("bad status line: " + statusLine);
  reply.status = std::stoi(statusLine.substr(9, 3));
  std::size_t position = lineEnd == std::string::npos ? head.size() : lineEnd + 2;
  while (position < head.size()) {
    auto next = head.find("\r\n", position);
    if (next == std::string::npos) next = head.size();
    std::string line = head.substr(position, next - position);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      reply.headers[lowerCase(line.substr(0, colon))] = value;
    }
    position = next + 2;
  }
  std::size_t length = 0;
  if (auto it = reply.headers.find("content-length"); it != reply.headers.end()) {
    length = std::stoul(it->second);
  }
  if (buffer.size() < headerEnd + 4 + length) return std::nullopt;
  reply.body = buffer.substr(headerEnd + 4, length);
  buffer.erase(0, headerEnd + 4 + length);
  return reply;
}

}  // namespace

int connectLoopback(int port, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TestPki makeTestPki(const CertificateOptions& servingOptions) {
  CertificateOptions caOptions;
  caOptions.commonName = "test CA";
  auto authority = generateCertificateAuthority(caOptions);
  if (!authority) throw std::runtime_error(authority.error());
  return TestPki{authority.value(), makeServingCertificate(authority.value(), servingOptions)};
}

PemCertificate makeServingCertificate(const PemCertificate& authority,
                                      const CertificateOptions& options) {
  auto serving = generateServingCertificate(authority, withLocalNames(options));
  if (!serving) throw std::runtime_error(serving.error());
  return serving.value();
}

std::string serialOf(const std::string& certificatePem) {
  auto certificates = parseCertificatesPem(certificatePem);
  if (!certificates) throw std::runtime_error(certificates.error());
  return serialHex(*certificates.value().front());
}

void ProjectedVolume::publish(const std::map<std::string, std::string>& files) {
  namespace fs = std::filesystem;
  fs::path version = dir_ / ("..2026_01_01_00_00_00." + std::to_string(++generation_));
  fs::create_directory(version);
  for (const auto& [name, content] : files) {
    std::ofstream out(version / name, std::ios::binary);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + (version / name).string());
  }
  fs::create_directory_symlink(version.filename(), dir_ / "..data_tmp");
  fs::rename(dir_ / "..data_tmp", dir_ / "..data");  // the atomic switch
  for (const auto& [name, content] : files) {
    if (!fs::is_symlink(dir_ / name)) fs::create_symlink(fs::path("..data") / name, dir_ / name);
  }
  if (!previous_.empty()) fs::remove_all(previous_);
  previous_ = version;
}

std::string HttpReply::header(const std::string& lowerCaseName) const {
  auto it = headers.find(lowerCaseName);
  return it == headers.end() ? std::string() : it->second;
}

TlsClient::TlsClient(int port, const std::string& caPem, TlsClientOptions options)
    : port_(port), options_(std::move(options)), context_(SSL_CTX_new(TLS_client_method())) {
  // Writing to a connection the server has closed (a refused one, say) raises SIGPIPE, which
  // would end the test run: blocked on this thread, the write fails with EPIPE instead.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  if (!context_) throw std::runtime_error("SSL_CTX_new failed");
  // Old protocol versions need security level 0 in OpenSSL 3.
  SSL_CTX_set_security_level(context_.get(), 0);
  SSL_CTX_set_min_proto_version(context_.get(), options_.minVersion);
  SSL_CTX_set_max_proto_version(context_.get(), options_.maxVersion);
  if (!options_.tls12Ciphers.empty() &&
      SSL_CTX_set_cipher_list(context_.get(), options_.tls12Ciphers.c_str()) != 1) {
    throw std::runtime_error("bad cipher list " + options_.tls12Ciphers);
  }
  auto authorities = parseCertificatesPem(caPem);
  if (!authorities) throw std::runtime_error(authorities.error());
  X509_STORE* store = SSL_CTX_get_cert_store(context_.get());
  for (auto& certificate : authorities.value()) X509_STORE_add_cert(store, certificate.get());
  SSL_CTX_set_verify(context_.get(), SSL_VERIFY_PEER, nullptr);
}

TlsClient::~TlsClient() {
  ssl_.reset();
  if (fd_ >= 0) ::close(fd_);
}

bool TlsClient::handshake() {
  fd_ = connectLoopback(port_, options_.timeout);
  if (fd_ < 0) {
    error_ = std::string("connect: ") + std::strerror(errno);
    return false;
  }
  ssl_.reset(SSL_new(context_.get()));
  SSL_set_fd(ssl_.get(), fd_);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), "127.0.0.1");
  if (SSL_connect(ssl_.get()) != 1) {
    error_ = "handshake: " + drainOpenSslErrors();
    return false;
  }
  return true;
}

std::string TlsClient::peerSerial() const {
  UniqueX509 peer(SSL_get1_peer_certificate(ssl_.get()));
  return peer ? serialHex(*peer) : std::string();
}

int TlsClient::peerChainLength() const {
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl_.get());
  return chain == nullptr ? 0 : sk_X509_num(chain);
}

int TlsClient::negotiatedVersion() const {
  return SSL_version(ssl_.get());
}

std::string TlsClient::cipherName() const {
  return SSL_get_cipher_name(ssl_.get());
}

bool TlsClient::send(std::string_view bytes) {
  std::size_t written = 0;
  while (written < bytes.size()) {
    std::size_t n = 0;
    if (SSL_write_ex(ssl_.get(), bytes.data() + written, bytes.size() - written, &n) != 1) {
      error_ = "write: " + drainOpenSslErrors();
      return false;
    }
    written += n;
  }
  return true;
}

std::optional<HttpReply> TlsClient::readReply() {
  while (true) {
    if (auto reply = takeReply(buffer_)) return reply;
    char chunk[16384];
    std::size_t n = 0;
    if (SSL_read_ex(ssl_.get(), chunk, sizeof chunk, &n) != 1) {
      drainOpenSslErrors();
      return std::nullopt;
    }
    buffer_.append(chunk, n);
  }
}

bool TlsClient::waitReadable(std::chrono::milliseconds limit) {
  if (!buffer_.empty() || SSL_pending(ssl_.get()) > 0) return true;
  pollfd descriptor{fd_, POLLIN, 0};
  return ::poll(&descriptor, 1, static_cast<int>(limit.count())) > 0;
}

bool TlsClient::closedByPeer() {
  char chunk[16384];
  std::size_t n = 0;
  if (SSL_read_ex(ssl_.get(), chunk, sizeof chunk, &n) == 1) {
    buffer_.append(chunk, n);
    return false;
  }
  int reason = SSL_get_error(ssl_.get(), 0);
  drainOpenSslErrors();
  bool timedOut = reason == SSL_ERROR_WANT_READ ||
                  (reason == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK));
  return !timedOut;
}

std::string TlsClient::request(std::string_view method, std::string_view target,
                               std::string_view headers, std::string_view body) {
  std::string out;
  out += method;
  out += ' ';
  out += target;
  out += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  out += headers;
  out += "\r\n";
  out += body;
  return out;
}

std::optional<HttpReply> postJson(int port, const std::string& caPem, std::string_view target,
                                  std::string_view body) {
  TlsClient client(port, caPem);
  if (!client.handshake()) return std::nullopt;
  std::string headers =
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (!client.send(TlsClient::request("POST", target, headers, body))) return std::nullopt;
  return client.readReply();
}

std::optional<HttpReply> httpGet(int port, std::string_view target) {
  int fd = connectLoopback(port, std::chrono::milliseconds(5000));
  if (fd < 0) return std::nullopt;
  std::string request = TlsClient::request("GET", target, "", "");
  if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string buffer;
  std::optional<HttpReply> reply;
  char chunk[16384];
  while (!(reply = takeReply(buffer))) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return reply;
}

}  // namespace hybrid_guard::webhook::testing
