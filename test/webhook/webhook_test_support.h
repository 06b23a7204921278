#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "webhook/openssl_util.h"
#include "webhook/pki.h"

// Sanitizer builds, whether gcc (__SANITIZE_*__) or clang (__has_feature) made them: timing and
// memory bounds meant for the plain build are relaxed or skipped there.
#if defined(__SANITIZE_ADDRESS__)
#define HG_TEST_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define HG_TEST_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HG_TEST_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define HG_TEST_TSAN 1
#endif
#endif

namespace hybrid_guard::webhook::testing {

// A CA and a serving certificate for localhost / 127.0.0.1 made by it, fresh for each call.
struct TestPki {
  PemCertificate authority;
  PemCertificate serving;
};
TestPki makeTestPki(const CertificateOptions& servingOptions = {});
// Another serving certificate from the same CA.
PemCertificate makeServingCertificate(const PemCertificate& authority,
                                      const CertificateOptions& options = {});
std::string serialOf(const std::string& certificatePem);

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& lowerCaseName) const;
};

struct TlsClientOptions {
  int minVersion = TLS1_VERSION;
  int maxVersion = 0;        // 0: the highest the library supports
  std::string tls12Ciphers;  // empty: OpenSSL's defaults
  std::chrono::milliseconds timeout{5000};
};

// A blocking TLS client on raw OpenSSL that verifies the server against a CA and 127.0.0.1.
class TlsClient {
 public:
  TlsClient(int port, const std::string& caPem, TlsClientOptions options = {});
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // Connects and completes the handshake; false (with error()) when either fails.
  bool handshake();
  const std::string& error() const { return error_; }

  std::string peerSerial() const;
  int peerChainLength() const;
  int negotiatedVersion() const;
  std::string cipherName() const;

  bool send(std::string_view bytes);
  // Reads one response (Content-Length framed); null on timeout, error or end of stream.
  std::optional<HttpReply> readReply();
  // Whether the server sent something (or closed) within `limit`.
  bool waitReadable(std::chrono::milliseconds limit);
  // True when the server closes the connection (or resets it) within the timeout, with no
  // further bytes before that.
  bool closedByPeer();

  // A whole request with the given headers after the request line.
  static std::string request(std::string_view method, std::string_view target,
                             std::string_view headers, std::string_view body);

 private:
  int port_;
  TlsClientOptions options_;
  UniqueSslCtx context_;
  UniqueSsl ssl_;
  int fd_ = -1;
  std::string buffer_;
  std::string error_;
};

// A plain TCP connection to 127.0.0.1:port with send and receive timeouts; -1 on failure.
int connectLoopback(int port, std::chrono::milliseconds timeout);

// One request on a fresh connection, the usual way: JSON body, Content-Length.
std::optional<HttpReply> postJson(int port, const std::string& caPem, std::string_view target,
                                  std::string_view body);

// Plain HTTP GET against 127.0.0.1:port.
std::optional<HttpReply> httpGet(int port, std::string_view target);

// The layout the kubelet's AtomicWriter keeps for a Secret or ConfigMap volume:
//   dir/tls.crt -> ..data/tls.crt,  dir/..data -> ..<timestamp>/,  dir/..<timestamp>/tls.crt
// publish() writes a new timestamped directory and atomically re-points ..data at it.
class ProjectedVolume {
 public:
  explicit ProjectedVolume(std::filesystem::path dir) : dir_(std::move(dir)) {}
  void publish(const std::map<std::string, std::string>& files);
  std::filesystem::path path(const std::string& name) const { return dir_ / name; }

 private:
  std::filesystem::path dir_;
  std::filesystem::path previous_;
  int generation_ = 0;
};

// Polls `condition` every few milliseconds until it holds or `limit` passes.
template <typename Condition>
bool eventually(Condition condition,
                std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

}  // namespace hybrid_guard::webhook::testing
