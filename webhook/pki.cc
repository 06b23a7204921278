#include "webhook/pki.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "webhook/openssl_util.h"

namespace hybrid_guard::webhook {
namespace {

constexpr int kSerialBits = 159;  // positive and within RFC 5280's 20 octets

Result<UniqueEvpPkey> generateP256Key() {
  UniqueEvpPkey key(EVP_EC_gen("P-256"));
  if (!key) return Result<UniqueEvpPkey>::failure("EC key generation: " + drainOpenSslErrors());
  return Result<UniqueEvpPkey>::success(std::move(key));
}

Status setRandomSerial(X509& certificate) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> number(BN_new(), BN_free);
  if (!number) return Status::failure("out of memory");
  do {
    if (BN_rand(number.get(), kSerialBits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
      return Status::failure("random serial: " + drainOpenSslErrors());
    }
  } while (BN_is_zero(number.get()));
  std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)> serial(
      BN_to_ASN1_INTEGER(number.get(), nullptr), ASN1_INTEGER_free);
  if (!serial || X509_set_serialNumber(&certificate, serial.get()) != 1) {
    return Status::failure("setting serial: " + drainOpenSslErrors());
  }
  return Status::success();
}

Status setValidity(X509& certificate, const CertificateOptions& options) {
  if (options.validity <= std::chrono::seconds::zero()) {
    return Status::failure("certificate validity must be positive");
  }
  auto notBefore =
      options.notBefore.value_or(std::chrono::system_clock::now() - std::chrono::minutes(5));
  auto notAfter = notBefore + options.validity;
  if (ASN1_TIME_set(X509_getm_notBefore(&certificate),
                    static_cast<time_t>(toUnixSeconds(notBefore))) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(&certificate),
                    static_cast<time_t>(toUnixSeconds(notAfter))) == nullptr) {
    return Status::failure("setting validity: " + drainOpenSslErrors());
  }
  return Status::success();
}

Status setSubject(X509& certificate, const std::string& commonName) {
  X509_NAME* name = X509_get_subject_name(&certificate);
  const auto* bytes = reinterpret_cast<const unsigned char*>(commonName.c_str());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, bytes, -1, -1, 0) != 1) {
    return Status::failure("invalid common name '" + commonName + "': " + drainOpenSslErrors());
  }
  return Status::success();
}

Status addExtension(X509& certificate, X509& issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, &issuer, &certificate, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  if (extension == nullptr) {
    return Status::failure(std::string("extension ") + OBJ_nid2sn(nid) + ": " +
                           drainOpenSslErrors());
  }
  int added = X509_add_ext(&certificate, extension, -1);
  X509_EXTENSION_free(extension);
  if (added != 1) return Status::failure("adding extension: " + drainOpenSslErrors());
  return Status::success();
}

bool isValidDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '*';
    if (!ok) return false;
  }
  return true;
}

Status addSubjectAltNames(X509& certificate, const CertificateOptions& options) {
  std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)> names(sk_GENERAL_NAME_new_null(),
                                                                      GENERAL_NAMES_free);
  if (!names) return Status::failure("out of memory");
  auto push = [&](int type, ASN1_STRING* value) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    if (name == nullptr) {
      ASN1_STRING_free(value);
      return false;
    }
    GENERAL_NAME_set0_value(name, type, value);
    if (sk_GENERAL_NAME_push(names.get(), name) == 0) {
      GENERAL_NAME_free(name);
      return false;
    }
    return true;
  };
  for (const auto& dns : options.dnsNames) {
    if (!isValidDnsName(dns)) return Status::failure("invalid DNS name '" + dns + "'");
    ASN1_IA5STRING* value = ASN1_IA5STRING_new();
    if (value == nullptr || ASN1_STRING_set(value, dns.data(), static_cast<int>(dns.size())) != 1 ||
        !push(GEN_DNS, value)) {
      return Status::failure("adding DNS name: " + drainOpenSslErrors());
    }
  }
  for (const auto& ip : options.ipAddresses) {
    ASN1_OCTET_STRING* value = a2i_IPADDRESS(ip.c_str());
    if (value == nullptr) {
      drainOpenSslErrors();
      return Status::failure("invalid IP address '" + ip + "'");
    }
    if (!push(GEN_IPADD, value)) return Status::failure("adding IP address: out of memory");
  }
  if (X509_add1_ext_i2d(&certificate, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) !=
      1) {
    return Status::failure("adding subjectAltName: " + drainOpenSslErrors());
  }
  return Status::success();
}

// Version 3, serial, validity, subject, public key: what every certificate here starts with.
Result<UniqueX509> newCertificate(const CertificateOptions& options, const std::string& commonName,
                                  EVP_PKEY& publicKey) {
  using R = Result<UniqueX509>;
  UniqueX509 certificate(X509_new());
  if (!certificate || X509_set_version(certificate.get(), X509_VERSION_3) != 1) {
    return R::failure("out of memory");
  }
  if (Status serial = setRandomSerial(*certificate); !serial) return R::failure(serial.error());
  if (Status validity = setValidity(*certificate, options); !validity) {
    return R::failure(validity.error());
  }
  if (Status subject = setSubject(*certificate, commonName); !subject) {
    return R::failure(subject.error());
  }
  if (X509_set_pubkey(certificate.get(), &publicKey) != 1) {
    return R::failure("setting public key: " + drainOpenSslErrors());
  }
  return R::success(std::move(certificate));
}

Result<PemCertificate> sign(X509& certificate, EVP_PKEY& signer, EVP_PKEY& subjectKey) {
  if (X509_sign(&certificate, &signer, EVP_sha256()) == 0) {
    return Result<PemCertificate>::failure("signing: " + drainOpenSslErrors());
  }
  PemCertificate out{certificateToPem(certificate), privateKeyToPem(subjectKey)};
  if (out.certificatePem.empty() || out.privateKeyPem.empty()) {
    return Result<PemCertificate>::failure("PEM encoding: " + drainOpenSslErrors());
  }
  return Result<PemCertificate>::success(std::move(out));
}

}  // namespace

Result<PemCertificate> generateCertificateAuthority(const CertificateOptions& options) {
  using R = Result<PemCertificate>;
  auto key = generateP256Key();
  if (!key) return R::failure(key.error());
  std::string commonName = options.commonName.empty() ? "hybrid-guard CA" : options.commonName;
  auto certificate = newCertificate(options, commonName, *key.value());
  if (!certificate) return R::failure(certificate.error());
  X509& ca = *certificate.value();
  if (X509_set_issuer_name(&ca, X509_get_subject_name(&ca)) != 1) {
    return R::failure("setting issuer: " + drainOpenSslErrors());
  }
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    if (Status added = addExtension(ca, ca, nid, value); !added) return R::failure(added.error());
  }
  return sign(ca, *key.value(), *key.value());
}

Result<PemCertificate> generateServingCertificate(const PemCertificate& authority,
                                                  const CertificateOptions& options) {
  using R = Result<PemCertificate>;
  if (options.dnsNames.empty() && options.ipAddresses.empty()) {
    return R::failure("a serving certificate needs at least one DNS name or IP address");
  }
  auto caCertificates = parseCertificatesPem(authority.certificatePem);
  if (!caCertificates) return R::failure("CA certificate: " + caCertificates.error());
  auto caKey = parsePrivateKeyPem(authority.privateKeyPem);
  if (!caKey) return R::failure("CA key: " + caKey.error());
  X509& ca = *caCertificates.value().front();
  if (X509_check_private_key(&ca, caKey.value().get()) != 1) {
    drainOpenSslErrors();
    return R::failure("CA key does not match the CA certificate");
  }

  auto key = generateP256Key();
  if (!key) return R::failure(key.error());
  std::string commonName = options.commonName;
  if (commonName.empty()) {
    commonName = options.dnsNames.empty() ? options.ipAddresses.front() : options.dnsNames.front();
  }
  auto certificate = newCertificate(options, commonName, *key.value());
  if (!certificate) return R::failure(certificate.error());
  X509& leaf = *certificate.value();
  if (X509_set_issuer_name(&leaf, X509_get_subject_name(&ca)) != 1) {
    return R::failure("setting issuer: " + drainOpenSslErrors());
  }
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
        std::pair{NID_key_usage, "critical,digitalSignature"},
        std::pair{NID_ext_key_usage, "serverAuth"}, std::pair{NID_subject_key_identifier, "hash"},
        std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (Status added = addExtension(leaf, ca, nid, value); !added) return R::failure(added.error());
  }
  if (Status added = addSubjectAltNames(leaf, options); !added) return R::failure(added.error());
  return sign(leaf, *caKey.value(), *key.value());
}

Status writePemFile(const std::filesystem::path& path, std::string_view content,
                    FileSecrecy secrecy) {
  const mode_t mode = secrecy == FileSecrecy::Secret ? 0600 : 0644;
  std::string temporary = path.string() + ".tmp-XXXXXX";
  int fd = mkstemp(temporary.data());  // created 0600, so a secret is never readable by others
  if (fd < 0) {
    return Status::failure("cannot create " + temporary + ": " + std::strerror(errno));
  }
  auto fail = [&](const std::string& what) {
    int savedErrno = errno;
    ::close(fd);
    ::unlink(temporary.c_str());
    return Status::failure(what + " " + path.string() + ": " + std::strerror(savedErrno));
  };
  if (::fchmod(fd, mode) != 0) return fail("cannot set the mode of");
  std::size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    ::unlink(temporary.c_str());
    return Status::failure("cannot write " + path.string() + ": " + std::strerror(errno));
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    int savedErrno = errno;
    ::unlink(temporary.c_str());
    return Status::failure("cannot rename into " + path.string() + ": " +
                           std::strerror(savedErrno));
  }
  return Status::success();
}

}  // namespace hybrid_guard::webhook
