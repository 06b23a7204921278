#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webhook/result.h"

namespace hybrid_guard::webhook {

// A certificate and its private key, both PEM.
struct PemCertificate {
  std::string certificatePem;
  std::string privateKeyPem;
};

struct CertificateOptions {
  std::string commonName;
  // Subject alternative names; the serving certificate needs at least one of them.
  std::vector<std::string> dnsNames;
  std::vector<std::string> ipAddresses;
  // Unset: five minutes ago, so that a peer whose clock is slightly behind accepts it.
  std::optional<std::chrono::system_clock::time_point> notBefore;
  std::chrono::seconds validity = std::chrono::hours(24 * 365);
};

// A self-signed ECDSA P-256 certificate authority (CA:TRUE, pathlen 0, keyCertSign).
[[nodiscard]] Result<PemCertificate> generateCertificateAuthority(
    const CertificateOptions& options);

// An ECDSA P-256 serving certificate signed by `authority`: serverAuth only, the SANs of
// `options`, a random 159-bit serial.
[[nodiscard]] Result<PemCertificate> generateServingCertificate(const PemCertificate& authority,
                                                                const CertificateOptions& options);

enum class FileSecrecy { Public, Secret };

// Writes `content` to `path` through a temporary file renamed into place, mode 0644 or, for
// secrets, 0600 (the mode is set before any byte is written).
[[nodiscard]] Status writePemFile(const std::filesystem::path& path, std::string_view content,
                                  FileSecrecy secrecy);

}  // namespace hybrid_guard::webhook
