#include "webhook/certificate_store.h"

#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>

namespace hybrid_guard::webhook {
namespace {

// ECDHE only (forward secrecy) with AEAD ciphers; TLS 1.3 suites are all AEAD already.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Key exchange groups, in order of preference: all of 128 bits or more, all offered by Go clients.
constexpr const char* kGroups = "X25519:P-256:P-384";

// A certificate or key file is small; anything much larger is not one.
constexpr std::uintmax_t kMaxPemFileBytes = 1 << 20;

Result<std::string> readSmallFile(const std::filesystem::path& path) {
  using R = Result<std::string>;
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return R::failure("cannot read " + path.string() + ": " + ec.message());
  if (size > kMaxPemFileBytes) return R::failure(path.string() + " is too large for a PEM file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return R::failure("cannot open " + path.string());
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return R::failure("cannot read " + path.string());
  return R::success(content.str());
}

std::string subjectLine(const X509& certificate) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      X509_NAME_print_ex(bio.get(), X509_get_subject_name(&certificate), 0, XN_FLAG_RFC2253) < 0) {
    return {};
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return length > 0 ? std::string(data, static_cast<std::size_t>(length)) : std::string();
}

int serveCurrentPair(SSL* ssl, void* arg) {
  const auto* store = static_cast<const CertificateStore*>(arg);
  std::shared_ptr<const CertKeyPair> pair = store->current();
  if (!pair) return 0;  // aborts the handshake: nothing to serve yet
  // Copies references into this SSL only; the shared SSL_CTX stays untouched.
  return SSL_use_cert_and_key(ssl, pair->certificate.get(), pair->privateKey.get(),
                              pair->chain.get(), 1) == 1
             ? 1
             : 0;
}

}  // namespace

Result<std::shared_ptr<const CertKeyPair>> parseCertKeyPair(
    std::string_view chainPem, std::string_view keyPem, std::chrono::system_clock::time_point now) {
  using R = Result<std::shared_ptr<const CertKeyPair>>;
  auto certificates = parseCertificatesPem(chainPem);
  if (!certificates) return R::failure("certificate: " + certificates.error());
  auto key = parsePrivateKeyPem(keyPem);
  if (!key) return R::failure("key: " + key.error());

  auto pair = std::make_shared<CertKeyPair>();
  pair->certificate = std::move(certificates.value().front());
  pair->privateKey = std::move(key.value());
  pair->chain.reset(sk_X509_new_null());
  if (!pair->chain) return R::failure("out of memory");
  for (std::size_t i = 1; i < certificates.value().size(); ++i) {
    if (sk_X509_push(pair->chain.get(), certificates.value()[i].get()) == 0) {
      return R::failure("out of memory");
    }
    certificates.value()[i].release();  // now owned by the stack
  }

  X509& leaf = *pair->certificate;
  if (X509_check_private_key(&leaf, pair->privateKey.get()) != 1) {
    drainOpenSslErrors();
    return R::failure("the private key does not match the certificate");
  }
  auto notBefore = asn1TimeToUnix(*X509_get0_notBefore(&leaf));
  auto notAfter = asn1TimeToUnix(*X509_get0_notAfter(&leaf));
  if (!notBefore || !notAfter) {
    return R::failure("certificate validity: " + (notBefore ? notAfter : notBefore).error());
  }
  pair->info =
      CertificateInfo{serialHex(leaf), subjectLine(leaf), notBefore.value(), notAfter.value()};
  std::int64_t nowSeconds = toUnixSeconds(now);
  if (nowSeconds < pair->info.notBefore) {
    return R::failure("the certificate is not valid yet (notBefore " +
                      std::to_string(pair->info.notBefore) + ")");
  }
  if (nowSeconds > pair->info.notAfter) {
    return R::failure("the certificate has expired (notAfter " +
                      std::to_string(pair->info.notAfter) + ")");
  }
  return R::success(std::move(pair));
}

CertificateStore::CertificateStore(Clock clock) : clock_(std::move(clock)) {}

Status CertificateStore::loadFiles(const std::filesystem::path& chainFile,
                                   const std::filesystem::path& keyFile) {
  auto chainPem = readSmallFile(chainFile);
  if (!chainPem) return Status::failure(chainPem.error());
  auto keyPem = readSmallFile(keyFile);
  if (!keyPem) return Status::failure(keyPem.error());
  if (Status loaded = loadPem(chainPem.value(), keyPem.value()); !loaded) {
    return Status::failure(chainFile.string() + " / " + keyFile.string() + ": " + loaded.error());
  }
  return Status::success();
}

Status CertificateStore::loadPem(std::string_view chainPem, std::string_view keyPem) {
  auto pair = parseCertKeyPair(chainPem, keyPem, clock_());
  if (!pair) return Status::failure(pair.error());
  std::shared_ptr<const CertKeyPair> next = std::move(pair.value());
  std::lock_guard lock(mutex_);
  current_.swap(next);
  return Status::success();
}

std::optional<CertificateInfo> CertificateStore::info() const {
  auto pair = current();
  if (!pair) return std::nullopt;
  return pair->info;
}

Status configureServerTls(SSL_CTX& context, const CertificateStore& store) {
  if (SSL_CTX_set_min_proto_version(&context, TLS1_2_VERSION) != 1) {
    return Status::failure("setting the minimum TLS version: " + drainOpenSslErrors());
  }
  if (SSL_CTX_set_cipher_list(&context, kTls12Ciphers) != 1) {
    return Status::failure("setting the TLS 1.2 ciphers: " + drainOpenSslErrors());
  }
  // Elliptic-curve groups of 128 bits and more; OpenSSL's defaults also offer finite-field groups
  // down to ffdhe2048 (112 bits) in TLS 1.3, which no API server needs.
  if (SSL_CTX_set1_groups_list(&context, kGroups) != 1) {
    return Status::failure("setting the key exchange groups: " + drainOpenSslErrors());
  }
  // SSL_OP_NO_RENEGOTIATION refuses renegotiation from either side (TLS 1.2; 1.3 has none).
  SSL_CTX_set_options(
      &context, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_clear_options(&context, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
  SSL_CTX_set_cert_cb(&context, serveCurrentPair, const_cast<CertificateStore*>(&store));
  return Status::success();
}

}  // namespace hybrid_guard::webhook
