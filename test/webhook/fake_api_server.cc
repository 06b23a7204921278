#include "test/webhook/fake_api_server.h"

#include <stdexcept>

#include "webhook/openssl_util.h"

namespace hybrid_guard::webhook::testing {

using nlohmann::json;

namespace {

json status(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
          {"code", code},     {"reason", reason},   {"message", message}};
}

}  // namespace

FakeApiServer::FakeApiServer() : pki_(makeTestPki()) {
  auto cert = parseCertificatesPem(pki_.serving.certificatePem);
  auto key = parsePrivateKeyPem(pki_.serving.privateKeyPem);
  if (!cert || !key) throw std::runtime_error("test PKI unreadable");
  server_ = std::make_unique<httplib::SSLServer>(cert.value().front().get(), key.value().get());
  httplib::SSLServer& server = *server_;
  // Keep-alive connections hold a thread each.
  server.new_task_queue = [] { return new httplib::ThreadPool(64); };

  server.Get("/apis/networking.istio.io", [this](const httplib::Request& req,
                                                 httplib::Response& res) {
    record(req);
    res.set_content(
        R"({"kind":"APIGroup","apiVersion":"v1","name":"networking.istio.io","versions":[)"
        R"({"groupVersion":"networking.istio.io/v1beta1","version":"v1beta1"},)"
        R"({"groupVersion":"networking.istio.io/v1alpha3","version":"v1alpha3"}],)"
        R"("preferredVersion":{"groupVersion":"networking.istio.io/v1beta1","version":"v1beta1"}})",
        "application/json");
  });
  server.Get("/apis/networking.istio.io/v1beta1/sidecars",
             [this](const httplib::Request& req, httplib::Response& res) {
               record(req);
               bool watch = req.has_param("watch");
               CannedResponse canned;
               {
                 std::lock_guard lock(mutex_);
                 auto& queue = watch ? watches_ : lists_;
                 if (queue.empty()) {
                   canned.hold = watch;  // nothing more scripted: a quiet watch
                   if (!watch) {
                     canned.status = 500;
                     canned.body = status(500, "InternalError", "no list scripted").dump();
                   }
                 } else {
                   canned = queue.front();
                   queue.pop_front();
                 }
               }
               serveCanned(std::move(canned), res);
             });
  const std::string cmPath = "/api/v1/namespaces/hybrid-guard/configmaps/hybrid-guard-ledger";
  server.Get(cmPath, [this](const httplib::Request& req, httplib::Response& res) {
    record(req);
    if (beforeConfigMapGet) beforeConfigMapGet();
    std::lock_guard lock(mutex_);
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata",
                {{"name", "hybrid-guard-ledger"},
                 {"namespace", "hybrid-guard"},
                 {"resourceVersion", std::to_string(resourceVersion_)}}},
               {"data", data_}};
    res.set_content(cm.dump(), "application/json");
  });
  server.Put(cmPath, [this](const httplib::Request& req, httplib::Response& res) {
    record(req);
    if (beforeConfigMapPut) beforeConfigMapPut();
    json body = json::parse(req.body, nullptr, false);
    std::lock_guard lock(mutex_);
    if (!body.is_object() || !body.contains("metadata") ||
        body["metadata"].value("resourceVersion", "") != std::to_string(resourceVersion_)) {
      ++conflicts_;
      res.status = 409;
      res.set_content(status(409, "Conflict",
                             "Operation cannot be fulfilled on configmaps \"hybrid-guard-ledger\": "
                             "the object has been modified; please apply your changes to the "
                             "latest version and try again")
                          .dump(),
                      "application/json");
      return;
    }
    ++puts_;
    data_ = body.value("data", json::object());
    ++resourceVersion_;
    body["metadata"]["resourceVersion"] = std::to_string(resourceVersion_);
    res.set_content(body.dump(), "application/json");
  });

  port_ = server.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() before the accept loop has started would be lost, and the join would hang.
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeApiServer::~FakeApiServer() {
  stopping_ = true;
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void FakeApiServer::record(const httplib::Request& request) {
  std::string target = request.path;
  std::string query;
  for (const auto& [k, v] : request.params) {
    query += (query.empty() ? "?" : "&") + k + "=" + v;
  }
  std::lock_guard lock(mutex_);
  requests_.push_back(target + query);
  authorization_ = request.get_header_value("Authorization");
}

void FakeApiServer::serveCanned(CannedResponse canned, httplib::Response& res) {
  res.status = canned.status;
  if (canned.lines.empty() && !canned.hold) {
    res.set_content(canned.body, "application/json");
    return;
  }
  auto lines = std::make_shared<std::vector<std::string>>(std::move(canned.lines));
  auto next = std::make_shared<size_t>(0);
  bool hold = canned.hold;
  res.set_chunked_content_provider("application/json",
                                   [this, lines, next, hold](size_t, httplib::DataSink& sink) {
                                     if (*next < lines->size()) {
                                       std::string line = (*lines)[(*next)++] + "\n";
                                       sink.write(line.data(), line.size());
                                       return true;
                                     }
                                     if (hold) {
                                       while (!stopping_)
                                         std::this_thread::sleep_for(std::chrono::milliseconds(10));
                                     }
                                     sink.done();
                                     return true;
                                   });
}

void FakeApiServer::queueList(CannedResponse response) {
  std::lock_guard lock(mutex_);
  lists_.push_back(std::move(response));
}

void FakeApiServer::queueWatch(CannedResponse response) {
  std::lock_guard lock(mutex_);
  watches_.push_back(std::move(response));
}

std::vector<std::string> FakeApiServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<std::string> FakeApiServer::requestsMatching(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto& r : requests()) {
    if (r.rfind(prefix, 0) == 0) out.push_back(r);
  }
  return out;
}

void FakeApiServer::setConfigMapData(json data) {
  std::lock_guard lock(mutex_);
  data_ = std::move(data);
  ++resourceVersion_;
}

json FakeApiServer::configMapData() const {
  std::lock_guard lock(mutex_);
  return data_;
}

KubeConfig FakeApiServer::clientConfig() const {
  KubeConfig config;
  config.host = "127.0.0.1";
  config.port = port_;
  config.caPem = pki_.authority.certificatePem;
  config.bearerToken = "test-token";
  config.namespace_ = "hybrid-guard";
  config.source = "fake";
  return config;
}

json sidecarObject(const std::string& ns, const std::string& name, const std::string& uid,
                   bool hybrid, const std::string& resourceVersion) {
  json s = {
      {"apiVersion", "networking.istio.io/v1beta1"},
      {"kind", "Sidecar"},
      {"metadata",
       {{"namespace", ns}, {"name", name}, {"uid", uid}, {"resourceVersion", resourceVersion}}},
      {"spec", {{"workloadSelector", {{"labels", {{"app", name}}}}}}}};
  json ingress = {{"port", {{"number", 8443}, {"protocol", "HTTPS"}}}};
  if (hybrid) {
    ingress["tls"] = {{"mode", "SIMPLE"},
                      {"serverCertificate", "/etc/istio/tls-certs/tls.crt"},
                      {"privateKey", "/etc/istio/tls-certs/tls.key"}};
  }
  s["spec"]["ingress"] = json::array({ingress});
  return s;
}

std::string watchEvent(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump();
}

std::string bookmark(const std::string& resourceVersion) {
  return json{{"type", "BOOKMARK"},
              {"object",
               {{"apiVersion", "networking.istio.io/v1beta1"},
                {"kind", "Sidecar"},
                {"metadata", {{"resourceVersion", resourceVersion}}}}}}
      .dump();
}

}  // namespace hybrid_guard::webhook::testing
