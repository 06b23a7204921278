#include "webhook/certificate_store.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "catch2/catch.hpp"
#include "test/support/test_support.h"
#include "test/webhook/webhook_test_support.h"

using namespace hybrid_guard::webhook;
using namespace hybrid_guard::webhook::testing;
using hybrid_guard::test::TempDir;

namespace {

std::string encryptedKeyPem(const std::string& keyPem) {
  auto key = parsePrivateKeyPem(keyPem);
  REQUIRE(key.ok());
  UniqueBio bio(BIO_new(BIO_s_mem()));
  static char passphrase[] = "passphrase";
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.value().get(), EVP_aes_256_cbc(),
                                   reinterpret_cast<unsigned char*>(passphrase),
                                   sizeof passphrase - 1, nullptr, nullptr) == 1);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(length));
}

}  // namespace

TEST_CASE("a valid pair is loaded and described", "[certificates]") {
  TestPki pki = makeTestPki();
  TempDir dir;
  auto cert = dir.write("tls.crt", pki.serving.certificatePem);
  auto key = dir.write("tls.key", pki.serving.privateKeyPem);
  CertificateStore store;
  CHECK_FALSE(store.current());
  CHECK_FALSE(store.info());

  REQUIRE(store.loadFiles(cert, key).ok());
  REQUIRE(store.current());
  auto info = store.info();
  REQUIRE(info);
  CHECK(info->serialHex == serialOf(pki.serving.certificatePem));
  CHECK(info->subject == "CN=localhost");
  auto leaf = parseCertificatesPem(pki.serving.certificatePem);
  REQUIRE(leaf.ok());
  CHECK(info->notAfter == asn1TimeToUnix(*X509_get0_notAfter(leaf.value()[0].get())).value());
  CHECK(info->notAfter - info->notBefore == 365 * 24 * 3600);
  CHECK(sk_X509_num(store.current()->chain.get()) == 0);
}

TEST_CASE("a chain file keeps its intermediates", "[certificates]") {
  TestPki pki = makeTestPki();
  CertificateStore store;
  REQUIRE(store
              .loadPem(pki.serving.certificatePem + pki.authority.certificatePem,
                       pki.serving.privateKeyPem)
              .ok());
  REQUIRE(sk_X509_num(store.current()->chain.get()) == 1);
  CHECK(serialHex(*sk_X509_value(store.current()->chain.get(), 0)) ==
        serialOf(pki.authority.certificatePem));
  CHECK(store.info()->serialHex == serialOf(pki.serving.certificatePem));
}

TEST_CASE("invalid pairs are refused and the current pair stays", "[certificates]") {
  TestPki pki = makeTestPki();
  PemCertificate other = makeServingCertificate(pki.authority);
  CertificateStore store;
  REQUIRE(store.loadPem(pki.serving.certificatePem, pki.serving.privateKeyPem).ok());
  std::shared_ptr<const CertKeyPair> before = store.current();

  auto refused = [&](std::string_view chain, std::string_view key) {
    Status status = store.loadPem(chain, key);
    CHECK(store.current() == before);
    CHECK(ERR_peek_error() == 0);  // no stale OpenSSL error left behind
    return status.ok() ? std::string() : status.error();
  };

  CHECK_THAT(refused(other.certificatePem, pki.serving.privateKeyPem),
             Catch::Contains("does not match"));
  CHECK_THAT(refused("garbage", pki.serving.privateKeyPem), Catch::Contains("no certificate"));
  CHECK_THAT(refused("", pki.serving.privateKeyPem), Catch::Contains("certificate"));
  CHECK_THAT(refused(pki.serving.certificatePem, "garbage"), Catch::Contains("key"));
  CHECK_THAT(refused(pki.serving.privateKeyPem, pki.serving.privateKeyPem),
             Catch::Contains("certificate"));
  CHECK_THAT(refused(pki.serving.certificatePem, encryptedKeyPem(pki.serving.privateKeyPem)),
             Catch::Contains("key"));
  std::string truncated =
      pki.serving.certificatePem.substr(0, 200) + "\n-----END CERTIFICATE-----\n";
  CHECK_THAT(refused(truncated, pki.serving.privateKeyPem), Catch::Contains("certificate"));
}

TEST_CASE("certificates outside their validity are refused", "[certificates]") {
  auto now = std::chrono::system_clock::now();
  TestPki pki = makeTestPki();

  SECTION("expired") {
    CertificateOptions options;
    options.notBefore = now - std::chrono::hours(48);
    options.validity = std::chrono::hours(24);
    PemCertificate expired = makeServingCertificate(pki.authority, options);
    CertificateStore store;
    Status status = store.loadPem(expired.certificatePem, expired.privateKeyPem);
    REQUIRE_FALSE(status.ok());
    CHECK_THAT(status.error(), Catch::Contains("expired"));
    CHECK_FALSE(store.current());
  }
  SECTION("not yet valid") {
    CertificateOptions options;
    options.notBefore = now + std::chrono::hours(1);
    PemCertificate future = makeServingCertificate(pki.authority, options);
    CertificateStore store;
    Status status = store.loadPem(future.certificatePem, future.privateKeyPem);
    REQUIRE_FALSE(status.ok());
    CHECK_THAT(status.error(), Catch::Contains("not valid yet"));
  }
  SECTION("judged by the injected clock") {
    CertificateStore inTwoYears([now] { return now + std::chrono::hours(24 * 730); });
    Status status = inTwoYears.loadPem(pki.serving.certificatePem, pki.serving.privateKeyPem);
    REQUIRE_FALSE(status.ok());
    CHECK_THAT(status.error(), Catch::Contains("expired"));
  }
}

TEST_CASE("unreadable files are refused with their path", "[certificates]") {
  TestPki pki = makeTestPki();
  TempDir dir;
  auto key = dir.write("tls.key", pki.serving.privateKeyPem);
  CertificateStore store;
  Status status = store.loadFiles(dir.path() / "missing.crt", key);
  REQUIRE_FALSE(status.ok());
  CHECK_THAT(status.error(), Catch::Contains("missing.crt"));
}

TEST_CASE("the server TLS context is locked down", "[certificates][tls]") {
  CertificateStore store;
  UniqueSslCtx context(SSL_CTX_new(TLS_server_method()));
  REQUIRE(configureServerTls(*context, store).ok());
  CHECK(SSL_CTX_get_min_proto_version(context.get()) == TLS1_2_VERSION);
  uint64_t options = SSL_CTX_get_options(context.get());
  CHECK((options & SSL_OP_NO_COMPRESSION) != 0);
  CHECK((options & SSL_OP_NO_RENEGOTIATION) != 0);
  CHECK((options & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0);
  CHECK((options & SSL_OP_ALLOW_CLIENT_RENEGOTIATION) == 0);

  UniqueSsl ssl(SSL_new(context.get()));
  STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(ssl.get());
  int tls12 = 0;
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* cipher = sk_SSL_CIPHER_value(ciphers, i);
    std::string name = SSL_CIPHER_get_name(cipher);
    if (name.rfind("TLS_", 0) == 0) continue;  // TLS 1.3 suites, all AEAD
    ++tls12;
    INFO(name);
    CHECK(SSL_CIPHER_get_kx_nid(cipher) == NID_kx_ecdhe);
    CHECK(SSL_CIPHER_is_aead(cipher) == 1);
    CHECK((name.find("GCM") != std::string::npos || name.find("CHACHA20") != std::string::npos));
  }
  CHECK(tls12 == 6);
}
