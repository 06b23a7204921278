#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "webhook/result.h"

namespace hybrid_guard::webhook {

struct OpenSslFree {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free_all(p); }
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
  void operator()(SSL* p) const { SSL_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};

using UniqueX509 = std::unique_ptr<X509, OpenSslFree>;
using UniqueEvpPkey = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using UniqueBio = std::unique_ptr<BIO, OpenSslFree>;
using UniqueSslCtx = std::unique_ptr<SSL_CTX, OpenSslFree>;
using UniqueSsl = std::unique_ptr<SSL, OpenSslFree>;
using UniqueX509Stack = std::unique_ptr<STACK_OF(X509), OpenSslFree>;

// Empties this thread's OpenSSL error queue into one line ("" when it was empty), so that a
// failure never leaves stale errors behind for the next, unrelated OpenSSL call.
std::string drainOpenSslErrors();

// Every certificate of a PEM bundle, in file order; fails when there is none or one is corrupt.
[[nodiscard]] Result<std::vector<UniqueX509>> parseCertificatesPem(std::string_view pem);
// One unencrypted private key (PKCS#8, SEC1 or PKCS#1 PEM); an encrypted key is refused.
[[nodiscard]] Result<UniqueEvpPkey> parsePrivateKeyPem(std::string_view pem);

std::string certificateToPem(X509& certificate);
std::string privateKeyToPem(EVP_PKEY& key);

// Serial number as upper-case hex without separators, as `openssl x509 -serial` prints it.
std::string serialHex(const X509& certificate);
// Seconds since the Unix epoch.
[[nodiscard]] Result<std::int64_t> asn1TimeToUnix(const ASN1_TIME& time);
std::int64_t toUnixSeconds(std::chrono::system_clock::time_point time);

}  // namespace hybrid_guard::webhook
