#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "webhook/kube_config.h"
#include "webhook/result.h"

namespace httplib {
class SSLClient;
}

namespace hybrid_guard::webhook {

// An answer of the API server: every status is a value (409 Conflict, 410 Gone, 404 ...); only
// failing to get an answer at all is an error.
struct KubeResponse {
  int status = 0;
  std::string body;

  bool ok() const { return status >= 200 && status < 300; }
  // The `message` of a metav1.Status body, else the body itself (shortened).
  std::string message() const;
};

// A small client of the Kubernetes API over HTTPS: requests on a pool of keep-alive connections
// (safe to call from several threads at once), and line-by-line streaming for watches. The API
// server is verified against the configured CA only; the bearer token file is re-read whenever it
// changes on disk (the kubelet rotates projected tokens).
class KubeClient {
 public:
  static Result<std::unique_ptr<KubeClient>> create(KubeConfig config);
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  const KubeConfig& config() const { return config_; }

  Result<KubeResponse> get(const std::string& path, std::chrono::milliseconds timeout);
  Result<KubeResponse> put(const std::string& path, const std::string& jsonBody,
                           std::chrono::milliseconds timeout);
  Result<KubeResponse> post(const std::string& path, const std::string& jsonBody,
                            std::chrono::milliseconds timeout);

  // GETs `path` and hands every line of a 200 answer to `onLine` as it arrives (a watch: one JSON
  // event per line); returning false from it ends the stream. Returns the HTTP status (with the
  // body of a non-200 answer in `errorBody`) once the server ends the stream or `onLine` stops it;
  // an error when the connection fails, nothing arrives for `idleTimeout`, or cancelStreams().
  Result<int> stream(const std::string& path, const std::function<bool(std::string_view)>& onLine,
                     std::chrono::milliseconds idleTimeout, std::string* errorBody = nullptr);
  // Ends every stream in progress and refuses new ones (shutdown).
  void cancelStreams();

 private:
  explicit KubeClient(KubeConfig config);
  Status prepare();
  std::unique_ptr<httplib::SSLClient> newConnection(std::chrono::milliseconds readTimeout);
  std::string authorization();
  Result<KubeResponse> send(const char* method, const std::string& path, const std::string* body,
                            std::chrono::milliseconds timeout);

  KubeConfig config_;
  std::string caPath_;                 // the CA bundle as a file (httplib reads it by path)
  std::filesystem::path ownedCaFile_;  // written from certificate-authority-data; removed
  std::mutex tokenMutex_;
  std::string token_;
  std::filesystem::file_time_type tokenMtime_{};
  std::mutex poolMutex_;
  std::vector<std::unique_ptr<httplib::SSLClient>> idle_;
  std::mutex streamsMutex_;
  std::set<httplib::SSLClient*> streams_;
  bool streamsCancelled_ = false;
};

// Percent-encodes a query parameter value.
std::string urlEncode(std::string_view value);

}  // namespace hybrid_guard::webhook
