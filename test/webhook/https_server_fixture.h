#pragma once

// A server for tests of the HTTP layer: port 0, a fresh CA, an echoing handler by default.
#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "catch2/catch.hpp"
#include "test/webhook/webhook_test_support.h"
#include "webhook/https_server.h"

namespace hybrid_guard::webhook::testing {

inline HttpResponse echo(Endpoint endpoint, std::string_view body) {
  nlohmann::json answer{{"endpoint", endpointName(endpoint)}, {"body", std::string(body)}};
  return HttpResponse{200, answer.dump()};
}

inline HttpsServerOptions smallLimits() {
  HttpsServerOptions options;
  options.maxBodyBytes = 4096;
  options.workers = 2;
  return options;
}

// A server on 127.0.0.1:<any port> with a fresh CA, recording handler calls and rejections.
class ServerFixture {
 public:
  explicit ServerFixture(HttpsServerOptions options = smallLimits(),
                         AdmissionHandler handler = echo)
      : pki_(makeTestPki()), store_(std::make_shared<CertificateStore>()) {
    REQUIRE(store_->loadPem(pki_.serving.certificatePem, pki_.serving.privateKeyPem).ok());
    server_ = std::make_unique<HttpsServer>(
        store_,
        [this, handler](Endpoint endpoint, std::string_view body) {
          ++handlerCalls;
          return handler(endpoint, body);
        },
        options,
        [this](const Rejection& rejection) {
          std::lock_guard lock(mutex_);
          rejections_.push_back(rejection);
        });
    Status started = server_->start("127.0.0.1", 0);
    INFO(started.error());
    REQUIRE(started.ok());
  }

  int port() const { return server_->port(); }
  const std::string& ca() const { return pki_.authority.certificatePem; }
  HttpsServer& server() { return *server_; }
  CertificateStore& store() { return *store_; }
  const TestPki& pki() const { return pki_; }
  std::vector<Rejection> rejections() {
    std::lock_guard lock(mutex_);
    return rejections_;
  }

  std::atomic<int> handlerCalls{0};

 private:
  TestPki pki_;
  std::shared_ptr<CertificateStore> store_;
  std::mutex mutex_;
  std::vector<Rejection> rejections_;
  std::unique_ptr<HttpsServer> server_;
};

inline std::string jsonHeaders(std::size_t length,
                               std::string_view contentType = "application/json") {
  return "Content-Type: " + std::string(contentType) +
         "\r\nContent-Length: " + std::to_string(length) + "\r\n";
}

}  // namespace hybrid_guard::webhook::testing
