#include "webhook/https_server.h"

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "catch2/catch.hpp"
#include "test/support/test_support.h"
#include "test/webhook/https_server_fixture.h"
#include "test/webhook/webhook_test_support.h"
#include "webhook/file_watcher.h"

using namespace hybrid_guard::webhook;
using namespace hybrid_guard::webhook::testing;
using hybrid_guard::test::TempDir;
using namespace std::chrono_literals;

namespace {

// Sends one request on a fresh connection and returns the reply.
HttpReply roundTrip(ServerFixture& fixture, const std::string& request) {
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());
  REQUIRE(client.send(request));
  auto reply = client.readReply();
  REQUIRE(reply);
  return *reply;
}

void requireJsonError(const HttpReply& reply, int status) {
  INFO(reply.body);
  CHECK(reply.status == status);
  CHECK(reply.header("content-type") == "application/json");
  auto body = nlohmann::json::parse(reply.body, nullptr, false);
  REQUIRE(body.is_object());
  REQUIRE(body.contains("error"));
  CHECK(body["error"].is_string());
  CHECK_FALSE(body["error"].get<std::string>().empty());
}

// Lets a test hold requests inside the handler.
class Gate {
 public:
  void enterAndWait() {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  bool waitUntilEntered(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return entered_ >= count; });
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int entered_ = 0;
  bool open_ = false;
};

}  // namespace

TEST_CASE("admission requests reach the handler and its answer is returned", "[server]") {
  ServerFixture fixture;

  SECTION("both endpoints") {
    for (Endpoint endpoint : {Endpoint::Validate, Endpoint::Mutate}) {
      auto reply = postJson(fixture.port(), fixture.ca(), endpointPath(endpoint), R"({"a":1})");
      REQUIRE(reply);
      CHECK(reply->status == 200);
      CHECK(reply->header("content-type") == "application/json");
      auto body = nlohmann::json::parse(reply->body);
      CHECK(body["endpoint"] == endpointName(endpoint));
      CHECK(body["body"] == R"({"a":1})");
    }
    CHECK(fixture.handlerCalls == 2);
    CHECK(fixture.rejections().empty());
  }
  SECTION("with the query string the API server adds") {
    auto reply = postJson(fixture.port(), fixture.ca(), "/validate?timeout=10s", "{}");
    REQUIRE(reply);
    CHECK(reply->status == 200);
  }
  SECTION("several requests on one keep-alive connection") {
    TlsClient client(fixture.port(), fixture.ca());
    REQUIRE(client.handshake());
    for (int i = 0; i < 3; ++i) {
      std::string body = "{\"i\":" + std::to_string(i) + "}";
      REQUIRE(client.send(TlsClient::request("POST", "/mutate", jsonHeaders(body.size()), body)));
      auto reply = client.readReply();
      REQUIRE(reply);
      CHECK(reply->status == 200);
      CHECK(reply->header("connection") != "close");
      CHECK(nlohmann::json::parse(reply->body)["body"] == body);
    }
  }
  SECTION("through httplib's own TLS client, verifying the server") {
    httplib::SSLClient client("127.0.0.1", fixture.port());
    X509_STORE* trusted = X509_STORE_new();
    auto authorities = parseCertificatesPem(fixture.ca());
    REQUIRE(authorities.ok());
    X509_STORE_add_cert(trusted, authorities.value().front().get());
    client.set_ca_cert_store(trusted);  // takes ownership
    client.enable_server_certificate_verification(true);
    auto result = client.Post("/validate", "{\"x\":true}", "application/json; charset=utf-8");
    REQUIRE(result);
    CHECK(result->status == 200);
    CHECK(nlohmann::json::parse(result->body)["body"] == "{\"x\":true}");
  }
  SECTION("a body of exactly the limit") {
    std::string body = "\"" + std::string(4094, 'x') + "\"";
    auto reply = postJson(fixture.port(), fixture.ca(), "/validate", body);
    REQUIRE(reply);
    CHECK(reply->status == 200);
  }
}

TEST_CASE("handler answers pass through, a throwing handler becomes a JSON 500", "[server]") {
  ServerFixture fixture(smallLimits(), [](Endpoint, std::string_view body) -> HttpResponse {
    if (body == "\"throw\"") throw std::runtime_error("boom");
    return HttpResponse{400, R"({"error":"not an AdmissionReview"})"};
  });
  auto refused = postJson(fixture.port(), fixture.ca(), "/validate", "\"x\"");
  REQUIRE(refused);
  CHECK(refused->status == 400);
  CHECK(refused->body == R"({"error":"not an AdmissionReview"})");

  auto failed = postJson(fixture.port(), fixture.ca(), "/validate", "\"throw\"");
  REQUIRE(failed);
  requireJsonError(*failed, 500);
}

TEST_CASE("bad requests are refused in the contract's order, with JSON errors", "[server]") {
  ServerFixture fixture;
  const std::string body = R"({"kind":"AdmissionReview"})";
  struct Case {
    std::string name;
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"unknown path", TlsClient::request("POST", "/admit", jsonHeaders(body.size()), body), 404},
      {"unknown path before method", TlsClient::request("GET", "/metrics", "", ""), 404},
      {"unknown path before content type",
       TlsClient::request("POST", "/", jsonHeaders(body.size(), "text/plain"), body), 404},
      {"wrong method", TlsClient::request("GET", "/validate", "", ""), 405},
      {"wrong method before content type",
       TlsClient::request("PUT", "/mutate", jsonHeaders(body.size(), "text/plain"), body), 405},
      {"wrong content type",
       TlsClient::request("POST", "/validate", jsonHeaders(body.size(), "text/plain"), body), 415},
      {"missing content type",
       TlsClient::request("POST", "/validate",
                          "Content-Length: " + std::to_string(body.size()) + "\r\n", body),
       415},
      {"json lookalike",
       TlsClient::request("POST", "/validate", jsonHeaders(body.size(), "application/jsonp"), body),
       415},
      {"compressed body",
       TlsClient::request("POST", "/validate",
                          jsonHeaders(body.size()) + "Content-Encoding: gzip\r\n", body),
       415},
      {"content type before size",
       TlsClient::request("POST", "/validate", jsonHeaders(1 << 30, "text/plain"), ""), 415},
      {"no length",
       TlsClient::request("POST", "/validate", "Content-Type: application/json\r\n", ""), 411},
      {"malformed length",
       TlsClient::request("POST", "/validate",
                          "Content-Type: application/json\r\nContent-Length: 12abc\r\n", ""),
       400},
      {"over the limit",
       TlsClient::request("POST", "/validate", jsonHeaders(4097), std::string(4097, ' ')), 413},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      HttpReply reply = roundTrip(fixture, c.request);
      requireJsonError(reply, c.status);
      CHECK(reply.header("connection") == "close");
      if (c.status == 405) CHECK(reply.header("allow") == "POST");
      CHECK(fixture.handlerCalls == 0);
      auto rejections = fixture.rejections();
      REQUIRE(rejections.size() == 1);
      CHECK(rejections[0].status == c.status);
      CHECK(rejections[0].endpoint.has_value() == (c.status != 404));
    }
  }
}

TEST_CASE("requests that cannot be read are refused with JSON errors", "[server]") {
  ServerFixture fixture;
  const std::string chunkedHeaders =
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n";
  struct Case {
    std::string name;
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"bare LF", "POST /validate HTTP/1.1\nHost: x\n\n", 400},
      {"malformed field", "POST /validate HTTP/1.1\r\nHost x\r\n\r\n", 400},
      {"another HTTP version", "POST /validate HTTP/2.0\r\n\r\n", 505},
      {"request line too long", "POST /validate?" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n",
       414},
      {"head too large", "POST /validate HTTP/1.1\r\nX-A: " + std::string(20000, 'a') + "\r\n\r\n",
       431},
      {"unsupported expectation",
       TlsClient::request("POST", "/validate", jsonHeaders(2) + "Expect: teapot\r\n", "{}"), 417},
      {"malformed chunk", TlsClient::request("POST", "/validate", chunkedHeaders, "zz\r\n"), 400},
      {"two lengths",
       TlsClient::request("POST", "/validate", jsonHeaders(2) + "Content-Length: 2\r\n", "{}"),
       400},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      TlsClient client(fixture.port(), fixture.ca());
      REQUIRE(client.handshake());
      REQUIRE(client.send(c.request));
      auto reply = client.readReply();
      REQUIRE(reply);
      requireJsonError(*reply, c.status);
      CHECK(reply->header("connection") == "close");
      CHECK(client.closedByPeer());
      CHECK(fixture.handlerCalls == 0);
      auto rejections = fixture.rejections();
      REQUIRE(rejections.size() == 1);
      CHECK(rejections[0].status == c.status);
    }
  }
}

TEST_CASE("media type parameters and case are accepted", "[server]") {
  ServerFixture fixture;
  for (std::string type : {"application/json; charset=utf-8", "Application/JSON",
                           " application/json ;charset=UTF-8"}) {
    INFO(type);
    HttpReply reply =
        roundTrip(fixture, TlsClient::request("POST", "/validate", jsonHeaders(2, type), "{}"));
    CHECK(reply.status == 200);
  }
}

TEST_CASE("an oversized body is refused from its declared length alone", "[server]") {
  ServerFixture fixture(HttpsServerOptions{});  // the default 8 MiB limit
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());
  // Headers only: the answer must not wait for a body that is never sent.
  REQUIRE(client.send(
      TlsClient::request("POST", "/validate", jsonHeaders(8 * 1024 * 1024 + 1), "{\"partial\":")));
  auto reply = client.readReply();
  REQUIRE(reply);
  requireJsonError(*reply, 413);
  CHECK_THAT(reply->body, Catch::Contains("8388608"));
  // And the connection is over: the rest of that body would otherwise be read as a request.
  REQUIRE(client.send(std::string(1024, 'x')));
  CHECK(client.closedByPeer());
}

TEST_CASE("the unread body of a refused request is never served as a request", "[server]") {
  ServerFixture fixture;
  std::string inner = TlsClient::request("POST", "/validate", jsonHeaders(2), "{}");
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());
  REQUIRE(client.send(
      TlsClient::request("POST", "/validate", jsonHeaders(inner.size(), "text/plain"), inner)));
  auto reply = client.readReply();
  REQUIRE(reply);
  CHECK(reply->status == 415);
  CHECK(client.closedByPeer());
  CHECK(fixture.handlerCalls == 0);
}

TEST_CASE("chunked bodies are read up to the limit", "[server]") {
  ServerFixture fixture;
  auto chunked = [](const std::string& body) {
    std::ostringstream out;
    for (std::size_t i = 0; i < body.size(); i += 1000) {
      std::string piece = body.substr(i, 1000);
      out << std::hex << piece.size() << "\r\n" << piece << "\r\n";
    }
    out << "0\r\n\r\n";
    return out.str();
  };
  const std::string headers = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n";

  SECTION("under the limit") {
    std::string body = "\"" + std::string(2500, 'y') + "\"";
    HttpReply reply =
        roundTrip(fixture, TlsClient::request("POST", "/validate", headers, chunked(body)));
    CHECK(reply.status == 200);
    CHECK(nlohmann::json::parse(reply.body)["body"] == body);
  }
  SECTION("over the limit") {
    std::string body(5000, 'z');
    HttpReply reply =
        roundTrip(fixture, TlsClient::request("POST", "/validate", headers, chunked(body)));
    requireJsonError(reply, 413);
    CHECK(fixture.handlerCalls == 0);
  }
  SECTION("with a Content-Length as well") {
    HttpReply reply = roundTrip(
        fixture,
        TlsClient::request("POST", "/validate", headers + "Content-Length: 7\r\n", chunked("{}")));
    requireJsonError(reply, 400);
  }
}

TEST_CASE("Expect: 100-continue is refused before the body is invited", "[server]") {
  ServerFixture fixture;
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());

  SECTION("too large: the final answer comes instead of 100 Continue") {
    REQUIRE(client.send(TlsClient::request("POST", "/validate",
                                           jsonHeaders(1 << 20) + "Expect: 100-continue\r\n", "")));
    auto reply = client.readReply();
    REQUIRE(reply);
    requireJsonError(*reply, 413);
  }
  SECTION("acceptable: continue, then the answer") {
    REQUIRE(client.send(
        TlsClient::request("POST", "/validate", jsonHeaders(2) + "Expect: 100-continue\r\n", "")));
    auto interim = client.readReply();
    REQUIRE(interim);
    CHECK(interim->status == 100);
    REQUIRE(client.send("{}"));
    auto reply = client.readReply();
    REQUIRE(reply);
    CHECK(reply->status == 200);
  }
}

TEST_CASE("TLS 1.2 is the minimum, with forward-secret AEAD ciphers only", "[server][tls]") {
  ServerFixture fixture;
  auto connect = [&](TlsClientOptions options) {
    auto client = std::make_unique<TlsClient>(fixture.port(), fixture.ca(), options);
    bool ok = client->handshake();
    return std::make_pair(ok, std::move(client));
  };

  SECTION("TLS 1.0 and 1.1 are refused") {
    for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
      auto [ok, client] = connect(TlsClientOptions{TLS1_VERSION, version, "", 5000ms});
      CHECK_FALSE(ok);
    }
  }
  SECTION("TLS 1.2 is accepted with ECDHE and AES-GCM or ChaCha20") {
    for (std::string cipher :
         {"", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
      INFO(cipher);
      auto [ok, client] = connect(TlsClientOptions{TLS1_2_VERSION, TLS1_2_VERSION, cipher});
      REQUIRE(ok);
      CHECK(client->negotiatedVersion() == TLS1_2_VERSION);
      std::string name = client->cipherName();
      CHECK(name.rfind("ECDHE-ECDSA-", 0) == 0);
      if (!cipher.empty()) CHECK(name == cipher);
    }
  }
  SECTION("TLS 1.2 CBC suites are refused") {
    auto [ok, client] = connect(TlsClientOptions{
        TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA"});
    CHECK_FALSE(ok);
  }
  SECTION("TLS 1.3 is accepted") {
    auto [ok, client] = connect(TlsClientOptions{TLS1_3_VERSION, 0, "", 5000ms});
    REQUIRE(ok);
    CHECK(client->negotiatedVersion() == TLS1_3_VERSION);
  }
}

TEST_CASE("a new certificate on disk is served to new connections", "[server][reload]") {
  TestPki pki = makeTestPki();
  PemCertificate second = makeServingCertificate(pki.authority);
  PemCertificate third = makeServingCertificate(pki.authority);
  TempDir dir;
  auto store = std::make_shared<CertificateStore>();
  std::atomic<int> reloaded{0}, refused{0};

  // What serve wires up: on a change, load both files; count the outcome.
  auto watchAndServe = [&](const std::filesystem::path& cert, const std::filesystem::path& key) {
    REQUIRE(store->loadFiles(cert, key).ok());
    auto watcher = std::make_unique<FileWatcher>(
        std::vector<std::filesystem::path>{cert, key},
        [&, cert, key] { (store->loadFiles(cert, key).ok() ? reloaded : refused)++; }, 20ms);
    watcher->start();
    return watcher;
  };
  auto servedSerial = [&](int port) {
    TlsClient client(port, pki.authority.certificatePem);
    return client.handshake() ? client.peerSerial() : std::string("handshake failed");
  };

  SECTION("files replaced in place") {
    auto cert = dir.path() / "tls.crt";
    auto key = dir.path() / "tls.key";
    REQUIRE(writePemFile(cert, pki.serving.certificatePem, FileSecrecy::Public).ok());
    REQUIRE(writePemFile(key, pki.serving.privateKeyPem, FileSecrecy::Secret).ok());
    auto watcher = watchAndServe(cert, key);
    HttpsServer server(store, echo, smallLimits());
    REQUIRE(server.start("127.0.0.1", 0).ok());
    CHECK(servedSerial(server.port()) == serialOf(pki.serving.certificatePem));

    // A connection made before the reload keeps working after it.
    TlsClient early(server.port(), pki.authority.certificatePem);
    REQUIRE(early.handshake());

    REQUIRE(writePemFile(key, second.privateKeyPem, FileSecrecy::Secret).ok());
    REQUIRE(writePemFile(cert, second.certificatePem, FileSecrecy::Public).ok());
    REQUIRE(eventually([&] { return reloaded.load() >= 1; }));
    CHECK(servedSerial(server.port()) == serialOf(second.certificatePem));
    REQUIRE(early.send(TlsClient::request("POST", "/validate", jsonHeaders(2), "{}")));
    auto reply = early.readReply();
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(early.peerSerial() == serialOf(pki.serving.certificatePem));

    SECTION("a key that does not match is refused, the old pair keeps serving") {
      REQUIRE(writePemFile(cert, third.certificatePem, FileSecrecy::Public).ok());
      REQUIRE(eventually([&] { return refused.load() >= 1; }));
      CHECK(servedSerial(server.port()) == serialOf(second.certificatePem));
    }
    SECTION("garbage is refused, the old pair keeps serving") {
      REQUIRE(writePemFile(cert, "-----BEGIN CERTIFICATE-----\nnope\n", FileSecrecy::Public).ok());
      REQUIRE(eventually([&] { return refused.load() >= 1; }));
      CHECK(servedSerial(server.port()) == serialOf(second.certificatePem));
      // Fixing the files recovers without a restart.
      REQUIRE(writePemFile(cert, second.certificatePem, FileSecrecy::Public).ok());
      REQUIRE(eventually([&] { return reloaded.load() >= 2; }));
    }
    CHECK(reloaded.load() >= 1);
  }

  SECTION("a Kubernetes Secret volume's ..data swap") {
    ProjectedVolume volume(dir.path());
    volume.publish(
        {{"tls.crt", pki.serving.certificatePem}, {"tls.key", pki.serving.privateKeyPem}});
    auto watcher = watchAndServe(volume.path("tls.crt"), volume.path("tls.key"));
    HttpsServer server(store, echo, smallLimits());
    REQUIRE(server.start("127.0.0.1", 0).ok());
    CHECK(servedSerial(server.port()) == serialOf(pki.serving.certificatePem));

    volume.publish({{"tls.crt", second.certificatePem}, {"tls.key", second.privateKeyPem}});
    REQUIRE(eventually([&] { return reloaded.load() == 1; }));
    CHECK(servedSerial(server.port()) == serialOf(second.certificatePem));
    CHECK(refused.load() == 0);

    volume.publish({{"tls.crt", third.certificatePem}, {"tls.key", second.privateKeyPem}});
    REQUIRE(eventually([&] { return refused.load() == 1; }));
    CHECK(servedSerial(server.port()) == serialOf(second.certificatePem));
  }
}

TEST_CASE("the chain file's intermediates are sent", "[server][tls]") {
  TestPki pki = makeTestPki();
  auto store = std::make_shared<CertificateStore>();
  REQUIRE(store
              ->loadPem(pki.serving.certificatePem + pki.authority.certificatePem,
                        pki.serving.privateKeyPem)
              .ok());
  HttpsServer server(store, echo, smallLimits());
  REQUIRE(server.start("127.0.0.1", 0).ok());
  TlsClient client(server.port(), pki.authority.certificatePem);
  REQUIRE(client.handshake());
  CHECK(client.peerChainLength() == 2);
}

TEST_CASE("stop lets in-flight requests finish", "[server][shutdown]") {
  Gate gate;
  ServerFixture fixture(smallLimits(), [&](Endpoint endpoint, std::string_view body) {
    gate.enterAndWait();
    return echo(endpoint, body);
  });
  auto inFlight = std::async(std::launch::async, [&] {
    return postJson(fixture.port(), fixture.ca(), "/validate", "{\"slow\":true}");
  });
  REQUIRE(gate.waitUntilEntered(1));

  auto stopped = std::async(std::launch::async, [&] { fixture.server().stop(); });
  // stop() must wait for the handler...
  CHECK(stopped.wait_for(300ms) == std::future_status::timeout);
  // ...while no new connection is accepted any more.
  TlsClient late(fixture.port(), fixture.ca());
  CHECK_FALSE(late.handshake());

  gate.open();
  auto reply = inFlight.get();
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(nlohmann::json::parse(reply->body)["body"] == "{\"slow\":true}");
  CHECK(stopped.wait_for(10s) == std::future_status::ready);
}

TEST_CASE("stop does not wait for idle keep-alive connections", "[server][shutdown]") {
  HttpsServerOptions options = smallLimits();
  options.idleTimeout = 60s;
  ServerFixture fixture(options);

  TlsClient used(fixture.port(), fixture.ca());
  REQUIRE(used.handshake());
  REQUIRE(used.send(TlsClient::request("POST", "/validate", jsonHeaders(2), "{}")));
  REQUIRE(used.readReply());
  TlsClient silent(fixture.port(), fixture.ca());  // handshake done, no request yet
  REQUIRE(silent.handshake());
  REQUIRE(eventually([&] {
    return fixture.server().liveConnections() == 2 && fixture.server().idleConnections() == 2;
  }));

  auto before = std::chrono::steady_clock::now();
  fixture.server().stop();
  CHECK(std::chrono::steady_clock::now() - before < 5s);
  CHECK(used.closedByPeer());
  CHECK(silent.closedByPeer());
  CHECK(fixture.server().liveConnections() == 0);
}

TEST_CASE("stop lets a request whose headers are arriving complete", "[server][shutdown]") {
  ServerFixture fixture;
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());
  std::string request = TlsClient::request("POST", "/validate", jsonHeaders(2), "{}");
  REQUIRE(eventually([&] { return fixture.server().idleConnections() == 1; }));
  REQUIRE(client.send(request.substr(0, 20)));  // the request has begun
  REQUIRE(eventually([&] { return fixture.server().idleConnections() == 0; }));

  auto stopped = std::async(std::launch::async, [&] { fixture.server().stop(); });
  CHECK(stopped.wait_for(300ms) == std::future_status::timeout);
  REQUIRE(client.send(request.substr(20)));
  auto reply = client.readReply();
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(stopped.wait_for(10s) == std::future_status::ready);
}

TEST_CASE("start reports what prevents serving", "[server]") {
  SECTION("no certificate loaded yet") {
    HttpsServer server(std::make_shared<CertificateStore>(), echo);
    Status started = server.start("127.0.0.1", 0);
    REQUIRE_FALSE(started.ok());
    CHECK_THAT(started.error(), Catch::Contains("certificate"));
  }
  SECTION("the port is taken, even by another server of ours") {
    ServerFixture first;
    auto store = std::make_shared<CertificateStore>();
    REQUIRE(
        store->loadPem(first.pki().serving.certificatePem, first.pki().serving.privateKeyPem).ok());
    HttpsServer second(store, echo);
    Status started = second.start("127.0.0.1", first.port());
    REQUIRE_FALSE(started.ok());
    CHECK_THAT(started.error(), Catch::Contains(std::to_string(first.port())));
  }
  SECTION("an address that is not local") {
    ServerFixture first;
    auto store = std::make_shared<CertificateStore>();
    REQUIRE(
        store->loadPem(first.pki().serving.certificatePem, first.pki().serving.privateKeyPem).ok());
    HttpsServer other(store, echo);
    CHECK_FALSE(other.start("192.0.2.1", 0).ok());
  }
}
