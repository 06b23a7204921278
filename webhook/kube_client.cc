#include "webhook/kube_client.h"

#include <httplib.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "webhook/openssl_util.h"

namespace hybrid_guard::webhook {

namespace fs = std::filesystem;

namespace {

constexpr const char* kUserAgent = "hybrid-guard/" HG_VERSION;
constexpr auto kConnectTimeout = std::chrono::seconds(5);

void setTimeout(httplib::SSLClient& client, std::chrono::milliseconds timeout, bool read) {
  auto seconds = static_cast<time_t>(timeout.count() / 1000);
  auto micros = static_cast<time_t>((timeout.count() % 1000) * 1000);
  if (read) {
    client.set_read_timeout(seconds, micros);
  } else {
    client.set_write_timeout(seconds, micros);
  }
}

}  // namespace

std::string KubeResponse::message() const {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
    return parsed["message"].get<std::string>();
  }
  return body.size() > 300 ? body.substr(0, 300) + "…" : body;
}

std::string urlEncode(std::string_view value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

KubeClient::KubeClient(KubeConfig config) : config_(std::move(config)) {}

KubeClient::~KubeClient() {
  cancelStreams();
  if (!ownedCaFile_.empty()) {
    std::error_code ec;
    fs::remove(ownedCaFile_, ec);
  }
}

Result<std::unique_ptr<KubeClient>> KubeClient::create(KubeConfig config) {
  using R = Result<std::unique_ptr<KubeClient>>;
  std::unique_ptr<KubeClient> client(new KubeClient(std::move(config)));
  if (auto s = client->prepare(); !s) return R::failure(s.error());
  return R::success(std::move(client));
}

Status KubeClient::prepare() {
  // Parse everything once so that a bad CA, certificate or key is refused at start, clearly.
  if (!config_.caPem.empty()) {
    if (auto certs = parseCertificatesPem(config_.caPem); !certs) {
      return Status::failure(config_.source + ": certificate-authority-data: " + certs.error());
    }
    // httplib loads a CA bundle from a path only (a store given in memory would be topped up
    // with the system roots), so the kubeconfig's inline CA goes to a private file.
    std::error_code ec;
    fs::path dir = fs::temp_directory_path(ec);
    if (ec) return Status::failure("no temporary folder for the API server CA: " + ec.message());
    std::string pattern = (dir / "hybrid-guard-kube-ca-XXXXXX").string();
    int fd = ::mkstemp(pattern.data());
    if (fd < 0) return Status::failure("cannot create " + pattern + " for the API server CA");
    ::close(fd);
    ownedCaFile_ = pattern;
    std::ofstream out(ownedCaFile_, std::ios::binary | std::ios::trunc);
    out << config_.caPem;
    if (!out.flush()) return Status::failure("cannot write " + ownedCaFile_.string());
    caPath_ = ownedCaFile_.string();
  } else {
    std::ifstream in(config_.caFile, std::ios::binary);
    if (!in) return Status::failure(config_.source + ": cannot read the CA " + config_.caFile);
    std::ostringstream text;
    text << in.rdbuf();
    if (auto certs = parseCertificatesPem(text.str()); !certs) {
      return Status::failure(config_.source + ": CA " + config_.caFile + ": " + certs.error());
    }
    caPath_ = config_.caFile;
  }
  if (!config_.clientCertificatePem.empty()) {
    if (auto certs = parseCertificatesPem(config_.clientCertificatePem); !certs) {
      return Status::failure(config_.source + ": client certificate: " + certs.error());
    }
    if (auto key = parsePrivateKeyPem(config_.clientKeyPem); !key) {
      return Status::failure(config_.source + ": client key: " + key.error());
    }
  }
  if (!config_.tokenFile.empty() && authorization().empty()) {
    return Status::failure(config_.source + ": cannot read the token file " +
                           config_.tokenFile.string());
  }
  return Status::success();
}

std::string KubeClient::authorization() {
  std::lock_guard lock(tokenMutex_);
  if (!config_.tokenFile.empty()) {
    std::error_code ec;
    auto mtime = fs::last_write_time(config_.tokenFile, ec);
    if (!ec && (token_.empty() || mtime != tokenMtime_)) {
      std::ifstream in(config_.tokenFile, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      std::string token = text.str();
      while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
        token.pop_back();
      }
      if (in && !token.empty()) {  // a half-written file keeps the previous token
        token_ = std::move(token);
        tokenMtime_ = mtime;
      }
    }
  } else {
    token_ = config_.bearerToken;
  }
  return token_.empty() ? std::string() : "Bearer " + token_;
}

std::unique_ptr<httplib::SSLClient> KubeClient::newConnection(
    std::chrono::milliseconds readTimeout) {
  std::unique_ptr<httplib::SSLClient> client;
  if (!config_.clientCertificatePem.empty()) {
    auto certs = parseCertificatesPem(config_.clientCertificatePem);
    auto key = parsePrivateKeyPem(config_.clientKeyPem);
    // Checked in prepare(); SSL_CTX_use_* take their own references.
    client = std::make_unique<httplib::SSLClient>(config_.host, config_.port,
                                                  certs.value().front().get(), key.value().get());
  } else {
    client = std::make_unique<httplib::SSLClient>(config_.host, config_.port);
  }
  client->set_ca_cert_path(caPath_.c_str());
  client->enable_server_certificate_verification(true);
  client->set_keep_alive(true);
  client->set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(kConnectTimeout));
  setTimeout(*client, readTimeout, true);
  setTimeout(*client, std::chrono::milliseconds(10000), false);
  return client;
}

Result<KubeResponse> KubeClient::send(const char* method, const std::string& path,
                                      const std::string* body, std::chrono::milliseconds timeout) {
  std::unique_ptr<httplib::SSLClient> client;
  {
    std::lock_guard lock(poolMutex_);
    if (!idle_.empty()) {
      client = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!client) client = newConnection(timeout);
  setTimeout(*client, timeout, true);
  httplib::Headers headers = {{"Accept", "application/json"}, {"User-Agent", kUserAgent}};
  if (std::string auth = authorization(); !auth.empty()) headers.emplace("Authorization", auth);
  std::string m = method;
  httplib::Result result = m == "GET" ? client->Get(path.c_str(), headers)
                           : m == "PUT"
                               ? client->Put(path.c_str(), headers, *body, "application/json")
                               : client->Post(path.c_str(), headers, *body, "application/json");
  if (!result) {
    std::string why = httplib::to_string(result.error());
    if (long verify = client->get_openssl_verify_result(); verify != X509_V_OK) {
      why += ": " + std::string(X509_verify_cert_error_string(verify));
    }
    return Result<KubeResponse>::failure(std::string(method) + " " + path + " on " + config_.host +
                                         ":" + std::to_string(config_.port) + " failed: " + why);
  }
  KubeResponse response{result->status, result->body};
  {
    std::lock_guard lock(poolMutex_);
    if (idle_.size() < 16) idle_.push_back(std::move(client));
  }
  return Result<KubeResponse>::success(std::move(response));
}

Result<KubeResponse> KubeClient::get(const std::string& path, std::chrono::milliseconds timeout) {
  return send("GET", path, nullptr, timeout);
}

Result<KubeResponse> KubeClient::put(const std::string& path, const std::string& jsonBody,
                                     std::chrono::milliseconds timeout) {
  return send("PUT", path, &jsonBody, timeout);
}

Result<KubeResponse> KubeClient::post(const std::string& path, const std::string& jsonBody,
                                      std::chrono::milliseconds timeout) {
  return send("POST", path, &jsonBody, timeout);
}

Result<int> KubeClient::stream(const std::string& path,
                               const std::function<bool(std::string_view)>& onLine,
                               std::chrono::milliseconds idleTimeout, std::string* errorBody) {
  auto client = newConnection(idleTimeout);
  client->set_keep_alive(false);
  {
    std::lock_guard lock(streamsMutex_);
    if (streamsCancelled_) return Result<int>::failure("stream cancelled");
    streams_.insert(client.get());
  }
  httplib::Headers headers = {{"Accept", "application/json"}, {"User-Agent", kUserAgent}};
  if (std::string auth = authorization(); !auth.empty()) headers.emplace("Authorization", auth);
  int status = 0;
  std::string pending;
  bool stoppedByCaller = false;
  auto result = client->Get(
      path.c_str(), headers,
      [&](const httplib::Response& response) {
        status = response.status;
        return true;
      },
      [&](const char* data, size_t length) {
        if (status != 200) {
          if (errorBody && errorBody->size() < 64 * 1024) errorBody->append(data, length);
          return true;
        }
        pending.append(data, length);
        size_t start = 0;
        for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
          std::string_view line(pending.data() + start, nl - start);
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          if (line.empty()) continue;
          if (!onLine(line)) {
            stoppedByCaller = true;
            return false;
          }
        }
        pending.erase(0, start);
        if (pending.size() > 16 * 1024 * 1024) return false;  // a line without end: give up
        return true;
      });
  bool cancelled;
  {
    std::lock_guard lock(streamsMutex_);
    streams_.erase(client.get());
    cancelled = streamsCancelled_;
  }
  if (stoppedByCaller) return Result<int>::success(status);
  if (cancelled) return Result<int>::failure("stream cancelled");
  if (!result) {
    return Result<int>::failure("GET " + path + " failed: " + httplib::to_string(result.error()));
  }
  if (status == 200 && !pending.empty()) onLine(pending);  // a last line without newline
  return Result<int>::success(status);
}

void KubeClient::cancelStreams() {
  std::lock_guard lock(streamsMutex_);
  streamsCancelled_ = true;
  for (auto* client : streams_) client->stop();
}

}  // namespace hybrid_guard::webhook
