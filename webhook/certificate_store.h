#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "webhook/openssl_util.h"
#include "webhook/result.h"

namespace hybrid_guard::webhook {

struct CertificateInfo {
  std::string serialHex;
  std::string subject;
  std::int64_t notBefore = 0;  // Unix seconds
  std::int64_t notAfter = 0;   // Unix seconds
};

// A validated serving certificate, its intermediates and its private key; immutable once built.
struct CertKeyPair {
  UniqueX509 certificate;
  UniqueX509Stack chain;  // the certificates after the first one in the chain file
  UniqueEvpPkey privateKey;
  CertificateInfo info;
};

// Parses a chain (leaf first) and a key, and checks that they belong together and that the leaf
// is valid at `now`.
[[nodiscard]] Result<std::shared_ptr<const CertKeyPair>> parseCertKeyPair(
    std::string_view chainPem, std::string_view keyPem, std::chrono::system_clock::time_point now);

// Holds the serving certificate that new TLS handshakes get. Replacing it never disturbs a
// handshake in progress or an established connection, and a refused replacement leaves the
// current pair in place.
class CertificateStore {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  explicit CertificateStore(Clock clock = [] { return std::chrono::system_clock::now(); });

  // Reads, validates and installs a chain file and a key file.
  [[nodiscard]] Status loadFiles(const std::filesystem::path& chainFile,
                                 const std::filesystem::path& keyFile);
  [[nodiscard]] Status loadPem(std::string_view chainPem, std::string_view keyPem);

  // Null until a pair was loaded. A mutex around the pointer copy rather than
  // std::atomic<std::shared_ptr>, which TSan reports racy in libstdc++ 12 (as in PolicyHolder);
  // the lock is held for a reference count bump once per handshake.
  std::shared_ptr<const CertKeyPair> current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  // Serial and validity of the current pair, for logs and the expiry metric.
  std::optional<CertificateInfo> info() const;

 private:
  Clock clock_;
  mutable std::mutex mutex_;
  std::shared_ptr<const CertKeyPair> current_;
};

// Prepares a server SSL_CTX: TLS 1.2 minimum, ECDHE over X25519, P-256 or P-384 only, AES-GCM or
// ChaCha20-Poly1305 for TLS 1.2, no compression, no renegotiation, server cipher preference; each
// handshake is given the store's current pair through SSL_CTX_set_cert_cb, so the context itself
// never changes after this call. `store` must outlive every SSL made from `context`.
[[nodiscard]] Status configureServerTls(SSL_CTX& context, const CertificateStore& store);

}  // namespace hybrid_guard::webhook
