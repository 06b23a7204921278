#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/webhook/webhook_test_support.h"
#include "webhook/kube_client.h"

namespace hybrid_guard::webhook::testing {

// A canned answer of the fake API server. For a watch: `lines` are written one by one (each a
// JSON event), then the stream ends, or, with `hold`, stays open until the server stops.
struct CannedResponse {
  CannedResponse() = default;
  CannedResponse(int status_, std::string body_, std::vector<std::string> lines_ = {},
                 bool hold_ = false)
      : status(status_), body(std::move(body_)), lines(std::move(lines_)), hold(hold_) {}

  int status = 200;
  std::string body;
  std::vector<std::string> lines;
  bool hold = false;
};

// A local HTTPS server standing in for kube-apiserver: discovery, a scripted queue of Sidecar
// list and watch answers (recorded API responses: pages, bookmarks, 410, disconnects), and one
// ConfigMap with resourceVersion semantics (409 on a stale update), as the real one has.
class FakeApiServer {
 public:
  FakeApiServer();
  ~FakeApiServer();

  void queueList(CannedResponse response);
  void queueWatch(CannedResponse response);
  // Every path (with query) asked for, in order.
  std::vector<std::string> requests() const;
  std::vector<std::string> requestsMatching(const std::string& prefix) const;

  // The ledger ConfigMap's data, and its resourceVersion.
  void setConfigMapData(nlohmann::json data);
  nlohmann::json configMapData() const;
  int configMapPuts() const { return puts_.load(); }
  int configMapConflicts() const { return conflicts_.load(); }
  // Called (without the lock) before each ConfigMap GET is answered: lets a test interleave.
  std::function<void()> beforeConfigMapGet;
  // Called (without the lock) before each ConfigMap PUT is checked: a rival writer.
  std::function<void()> beforeConfigMapPut;

  KubeConfig clientConfig() const;  // bearer token "test-token", the test CA
  int port() const { return port_; }
  const std::string& lastAuthorization() const { return authorization_; }

 private:
  void record(const httplib::Request& request);
  void serveCanned(CannedResponse canned, httplib::Response& response);

  TestPki pki_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::deque<CannedResponse> lists_;
  std::deque<CannedResponse> watches_;
  nlohmann::json data_ = nlohmann::json::object();
  long long resourceVersion_ = 1;
  std::atomic<int> puts_{0};
  std::atomic<int> conflicts_{0};
  std::string authorization_;
};

nlohmann::json sidecarObject(const std::string& ns, const std::string& name, const std::string& uid,
                             bool hybrid, const std::string& resourceVersion = "1");
std::string watchEvent(const std::string& type, const nlohmann::json& object);
std::string bookmark(const std::string& resourceVersion);

}  // namespace hybrid_guard::webhook::testing
