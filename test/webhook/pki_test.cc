#include "webhook/pki.h"

#include <openssl/x509v3.h>
#include <sys/stat.h>

#include "catch2/catch.hpp"
#include "test/support/test_support.h"
#include "test/webhook/webhook_test_support.h"
#include "webhook/openssl_util.h"

using namespace hybrid_guard::webhook;
using hybrid_guard::test::readFile;
using hybrid_guard::test::TempDir;
using hybrid_guard::webhook::testing::serialOf;

namespace {

UniqueX509 certificateOf(const std::string& pem) {
  auto certificates = parseCertificatesPem(pem);
  REQUIRE(certificates.ok());
  return std::move(certificates.value().front());
}

bool verifies(X509& leaf, X509& authority) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), &authority);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> context(X509_STORE_CTX_new(),
                                                                          X509_STORE_CTX_free);
  X509_STORE_CTX_init(context.get(), store.get(), &leaf, nullptr);
  X509_STORE_CTX_set_purpose(context.get(), X509_PURPOSE_SSL_SERVER);
  bool ok = X509_verify_cert(context.get()) == 1;
  drainOpenSslErrors();
  return ok;
}

void requireP256(const std::string& keyPem) {
  auto key = parsePrivateKeyPem(keyPem);
  REQUIRE(key.ok());
  CHECK(EVP_PKEY_is_a(key.value().get(), "EC"));
  char group[64] = {};
  std::size_t length = 0;
  REQUIRE(EVP_PKEY_get_group_name(key.value().get(), group, sizeof group, &length) == 1);
  CHECK(std::string(group) == "prime256v1");
}

CertificateOptions servingOptions() {
  CertificateOptions options;
  options.dnsNames = {"hybrid-guard.system.svc", "hybrid-guard.system.svc.cluster.local"};
  options.ipAddresses = {"10.0.0.7", "::1"};
  return options;
}

}  // namespace

TEST_CASE("the CA is a self-signed P-256 certificate authority", "[pki]") {
  CertificateOptions options;
  options.commonName = "unit CA";
  auto authority = generateCertificateAuthority(options);
  REQUIRE(authority.ok());
  UniqueX509 ca = certificateOf(authority.value().certificatePem);
  requireP256(authority.value().privateKeyPem);

  CHECK(X509_check_ca(ca.get()) == 1);
  CHECK(X509_check_issued(ca.get(), ca.get()) == X509_V_OK);
  CHECK(X509_verify(ca.get(), X509_get0_pubkey(ca.get())) == 1);
  CHECK((X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN) != 0);
  CHECK(X509_NAME_cmp(X509_get_subject_name(ca.get()), X509_get_issuer_name(ca.get())) == 0);
  auto key = parsePrivateKeyPem(authority.value().privateKeyPem);
  REQUIRE(key.ok());
  CHECK(X509_check_private_key(ca.get(), key.value().get()) == 1);
}

TEST_CASE("the serving certificate is signed by the CA, for server authentication only", "[pki]") {
  auto authority = generateCertificateAuthority({});
  REQUIRE(authority.ok());
  auto serving = generateServingCertificate(authority.value(), servingOptions());
  REQUIRE(serving.ok());
  UniqueX509 ca = certificateOf(authority.value().certificatePem);
  UniqueX509 leaf = certificateOf(serving.value().certificatePem);
  requireP256(serving.value().privateKeyPem);

  CHECK(verifies(*leaf, *ca));
  CHECK(X509_check_ca(leaf.get()) == 0);
  CHECK(X509_check_purpose(leaf.get(), X509_PURPOSE_SSL_SERVER, 0) == 1);
  CHECK(X509_check_purpose(leaf.get(), X509_PURPOSE_SSL_CLIENT, 0) == 0);
  CHECK((X509_get_extended_key_usage(leaf.get()) & XKU_SSL_SERVER) != 0);

  SECTION("every SAN is present, nothing else matches") {
    CHECK(X509_check_host(leaf.get(), "hybrid-guard.system.svc", 0, 0, nullptr) == 1);
    CHECK(X509_check_host(leaf.get(), "hybrid-guard.system.svc.cluster.local", 0, 0, nullptr) == 1);
    CHECK(X509_check_ip_asc(leaf.get(), "10.0.0.7", 0) == 1);
    CHECK(X509_check_ip_asc(leaf.get(), "::1", 0) == 1);
    CHECK(X509_check_host(leaf.get(), "evil.example.com", 0, 0, nullptr) == 0);
    CHECK(X509_check_ip_asc(leaf.get(), "10.0.0.8", 0) == 0);
  }

  SECTION("a certificate from another CA does not verify") {
    auto other = generateCertificateAuthority({});
    REQUIRE(other.ok());
    UniqueX509 otherCa = certificateOf(other.value().certificatePem);
    CHECK_FALSE(verifies(*leaf, *otherCa));
  }
}

TEST_CASE("validity and serial follow the options", "[pki]") {
  auto authority = generateCertificateAuthority({});
  REQUIRE(authority.ok());
  CertificateOptions options = servingOptions();
  auto notBefore = std::chrono::system_clock::now() - std::chrono::hours(48);
  options.notBefore = notBefore;
  options.validity = std::chrono::hours(24);
  auto serving = generateServingCertificate(authority.value(), options);
  REQUIRE(serving.ok());
  UniqueX509 leaf = certificateOf(serving.value().certificatePem);

  auto start = asn1TimeToUnix(*X509_get0_notBefore(leaf.get()));
  auto end = asn1TimeToUnix(*X509_get0_notAfter(leaf.get()));
  REQUIRE(start.ok());
  REQUIRE(end.ok());
  CHECK(start.value() == toUnixSeconds(notBefore));
  CHECK(end.value() - start.value() == 24 * 3600);

  auto again = generateServingCertificate(authority.value(), options);
  REQUIRE(again.ok());
  std::string serial = serialOf(serving.value().certificatePem);
  CHECK(serial != serialOf(again.value().certificatePem));
  CHECK(serial.size() <= 40);  // at most 20 octets (RFC 5280)
  CHECK(serial.find_first_not_of("0") != std::string::npos);
  CHECK(serial.front() != '-');
}

TEST_CASE("bad requests for certificates are refused with a reason", "[pki]") {
  auto authority = generateCertificateAuthority({});
  REQUIRE(authority.ok());

  SECTION("no SAN at all") {
    auto serving = generateServingCertificate(authority.value(), {});
    REQUIRE_FALSE(serving.ok());
    CHECK_THAT(serving.error(), Catch::Contains("DNS name or IP address"));
  }
  SECTION("an invalid IP address") {
    CertificateOptions options;
    options.ipAddresses = {"10.0.0.300"};
    auto serving = generateServingCertificate(authority.value(), options);
    REQUIRE_FALSE(serving.ok());
    CHECK_THAT(serving.error(), Catch::Contains("10.0.0.300"));
  }
  SECTION("an invalid DNS name") {
    CertificateOptions options;
    options.dnsNames = {"bad name"};
    CHECK_FALSE(generateServingCertificate(authority.value(), options).ok());
  }
  SECTION("a CA key that does not belong to the CA certificate") {
    auto other = generateCertificateAuthority({});
    REQUIRE(other.ok());
    PemCertificate mixed{authority.value().certificatePem, other.value().privateKeyPem};
    auto serving = generateServingCertificate(mixed, servingOptions());
    REQUIRE_FALSE(serving.ok());
    CHECK_THAT(serving.error(), Catch::Contains("does not match"));
  }
  SECTION("a non-positive validity") {
    CertificateOptions options = servingOptions();
    options.validity = std::chrono::seconds(0);
    CHECK_FALSE(generateServingCertificate(authority.value(), options).ok());
  }
}

TEST_CASE("PEM files are written whole, keys readable by the owner only", "[pki]") {
  TempDir dir;
  auto mode = [](const std::filesystem::path& path) {
    struct stat info {};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    return info.st_mode & 0777;
  };
  auto key = dir.path() / "tls.key";
  auto cert = dir.path() / "tls.crt";
  ::umask(022);

  REQUIRE(writePemFile(key, "secret-one", FileSecrecy::Secret).ok());
  REQUIRE(writePemFile(cert, "public-one", FileSecrecy::Public).ok());
  CHECK(mode(key) == 0600);
  CHECK(mode(cert) == 0644);
  CHECK(readFile(key) == "secret-one");

  REQUIRE(writePemFile(key, "secret-two", FileSecrecy::Secret).ok());
  CHECK(readFile(key) == "secret-two");
  CHECK(mode(key) == 0600);
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path()))
    ++files;
  CHECK(files == 2);  // no temporary left behind

  Status missingDir =
      writePemFile(dir.path() / "no" / "such" / "dir.pem", "x", FileSecrecy::Public);
  REQUIRE_FALSE(missingDir.ok());
  CHECK_THAT(missingDir.error(), Catch::Contains("no/such"));
}
