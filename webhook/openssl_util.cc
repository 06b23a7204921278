#include "webhook/openssl_util.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <ctime>
#include <limits>

namespace hybrid_guard::webhook {
namespace {

// Refuses to prompt for a passphrase: OpenSSL's default callback would read from the terminal.
int refusePassphrase(char*, int, int, void*) {
  return -1;
}

Result<UniqueBio> memoryBio(std::string_view data) {
  if (data.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return Result<UniqueBio>::failure("PEM input too large");
  }
  UniqueBio bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return Result<UniqueBio>::failure("out of memory: " + drainOpenSslErrors());
  return Result<UniqueBio>::success(std::move(bio));
}

std::string bioContents(BIO& bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(&bio, &data);
  return length > 0 ? std::string(data, static_cast<std::size_t>(length)) : std::string();
}

bool isEndOfPemInput() {
  unsigned long err = ERR_peek_last_error();
  return ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
}

}  // namespace

std::string drainOpenSslErrors() {
  std::string out;
  while (unsigned long err = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(err, buffer, sizeof buffer);
    if (!out.empty()) out += "; ";
    out += buffer;
  }
  return out;
}

Result<std::vector<UniqueX509>> parseCertificatesPem(std::string_view pem) {
  using R = Result<std::vector<UniqueX509>>;
  auto bio = memoryBio(pem);
  if (!bio) return R::failure(bio.error());
  drainOpenSslErrors();
  std::vector<UniqueX509> certificates;
  while (true) {
    UniqueX509 certificate(
        PEM_read_bio_X509(bio.value().get(), nullptr, refusePassphrase, nullptr));
    if (!certificate) break;
    certificates.push_back(std::move(certificate));
  }
  if (!isEndOfPemInput()) {
    return R::failure("corrupt certificate PEM: " + drainOpenSslErrors());
  }
  drainOpenSslErrors();
  if (certificates.empty()) return R::failure("no certificate found in PEM input");
  return R::success(std::move(certificates));
}

Result<UniqueEvpPkey> parsePrivateKeyPem(std::string_view pem) {
  using R = Result<UniqueEvpPkey>;
  auto bio = memoryBio(pem);
  if (!bio) return R::failure(bio.error());
  drainOpenSslErrors();
  UniqueEvpPkey key(PEM_read_bio_PrivateKey(bio.value().get(), nullptr, refusePassphrase, nullptr));
  if (!key) {
    std::string detail = drainOpenSslErrors();
    return R::failure("no usable private key in PEM input" +
                      (detail.empty() ? std::string() : ": " + detail));
  }
  return R::success(std::move(key));
}

std::string certificateToPem(X509& certificate) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), &certificate) != 1) return {};
  return bioContents(*bio);
}

std::string privateKeyToPem(EVP_PKEY& key) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return bioContents(*bio);
}

std::string serialHex(const X509& certificate) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(&certificate);
  BIGNUM* number = ASN1_INTEGER_to_BN(serial, nullptr);
  if (number == nullptr) return {};
  char* hex = BN_bn2hex(number);
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  BN_free(number);
  return out;
}

Result<std::int64_t> asn1TimeToUnix(const ASN1_TIME& time) {
  std::tm parts{};
  if (ASN1_TIME_to_tm(&time, &parts) != 1) {
    return Result<std::int64_t>::failure("invalid ASN.1 time: " + drainOpenSslErrors());
  }
  return Result<std::int64_t>::success(static_cast<std::int64_t>(timegm(&parts)));
}

std::int64_t toUnixSeconds(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

}  // namespace hybrid_guard::webhook
