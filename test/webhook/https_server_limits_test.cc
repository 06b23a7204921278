// DESIGN §6 "slow and idle clients never starve the server": the request deadline, the idle
// timeout, the connection cap, pipelining, and a connection flood.
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "catch2/catch.hpp"
#include "test/webhook/https_server_fixture.h"
#include "test/webhook/webhook_test_support.h"
#include "webhook/https_server.h"

using namespace hybrid_guard::webhook;
using namespace hybrid_guard::webhook::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

HttpsServerOptions quickTimeouts() {
  HttpsServerOptions options = smallLimits();
  options.workers = 1;  // the slow clients share the loop that must keep serving the others
  options.requestTimeout = 1000ms;
  return options;
}

std::string validRequest(std::string_view target = "/validate", std::string_view body = "{}") {
  return TlsClient::request("POST", target, jsonHeaders(body.size()), body);
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Sends `bytes` one at a time, `pause` apart, until the server answers or closes.
// Returns when the first byte went out.
Clock::time_point trickle(TlsClient& client, const std::string& bytes,
                          std::chrono::milliseconds pause) {
  Clock::time_point firstByte = Clock::now();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (!client.send(bytes.substr(i, 1))) break;
    if (i == 0) firstByte = Clock::now();
    if (client.waitReadable(pause)) break;
  }
  return firstByte;
}

// What the server may hold for a connection stalled in its handshake: a TLS object with its read
// buffer. AddressSanitizer pads every allocation and keeps freed ones for a while;
// ThreadSanitizer's shadow memory makes RSS say nothing about the server.
#if defined(HG_TEST_ASAN)
constexpr long kKibPerStalledConnection = 256;
#elif defined(HG_TEST_TSAN)
constexpr long kKibPerStalledConnection = 0;  // not checked
#else
constexpr long kKibPerStalledConnection = 64;
#endif

// A field of /proc/self/status, e.g. "Threads" or "VmRSS" (in kB).
long procStatus(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// Whether the server ends a plain TCP connection (FIN or reset) within `limit`.
bool closedWithin(int fd, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  char byte;
  while (Clock::now() < deadline) {
    ssize_t n = ::recv(fd, &byte, 1, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("a trickled request is cut at its deadline while others are served", "[server][limits]") {
  ServerFixture fixture(quickTimeouts());
  std::string body = R"({"kind":"AdmissionReview","padding":")" + std::string(60, 'x') + "\"}";

  struct Case {
    std::string name;
    std::string sentAtOnce;
    std::string trickled;
    bool endpointKnown;
  };
  const std::string request = validRequest("/validate", body);
  const std::size_t headEnd = request.find("\r\n\r\n") + 4;
  for (const Case& c :
       {Case{"the head byte by byte", "", request, false},
        Case{"the body byte by byte", request.substr(0, headEnd), request.substr(headEnd), true}}) {
    SECTION(c.name) {
      TlsClient slow(fixture.port(), fixture.ca());
      REQUIRE(slow.handshake());
      Clock::time_point headSent = Clock::now();
      if (!c.sentAtOnce.empty()) REQUIRE(slow.send(c.sentAtOnce));
      auto trickling = std::async(std::launch::async, [&] {
        Clock::time_point firstTrickled = trickle(slow, c.trickled, 50ms);
        return c.sentAtOnce.empty() ? firstTrickled : headSent;
      });

      // Meanwhile, on the same event loop, valid requests are answered at once.
      std::this_thread::sleep_for(300ms);
      for (int i = 0; i < 3; ++i) {
        auto sent = Clock::now();
        auto reply = postJson(fixture.port(), fixture.ca(), "/mutate", "{}");
        REQUIRE(reply);
        CHECK(reply->status == 200);
        CHECK(secondsSince(sent) < 0.5);
        std::this_thread::sleep_for(100ms);
      }

      Clock::time_point firstByte = trickling.get();
      auto reply = slow.readReply();
      double cutAfter = secondsSince(firstByte);
      REQUIRE(reply);
      CHECK(reply->status == 408);
      CHECK(reply->header("connection") == "close");
      CHECK(slow.closedByPeer());
      // Cut at the 1 s deadline counted from the request's first byte, not when the request
      // would have been complete (several seconds).
      CHECK(cutAfter > 0.9);
      CHECK(cutAfter < 1.5);
      CHECK(fixture.handlerCalls == 3);
      auto rejections = fixture.rejections();
      REQUIRE(rejections.size() == 1);
      CHECK(rejections[0].status == 408);
      CHECK(rejections[0].endpoint.has_value() == c.endpointKnown);
    }
  }
}

TEST_CASE("a connection that never completes its handshake is closed at the deadline",
          "[server][limits]") {
  ServerFixture fixture(quickTimeouts());
  int silent = connectLoopback(fixture.port(), 100ms);
  REQUIRE(silent >= 0);
  int partial = connectLoopback(fixture.port(), 100ms);
  REQUIRE(partial >= 0);
  const unsigned char recordHeader[] = {0x16, 0x03, 0x01, 0x02,
                                        0x00};  // a ClientHello that never comes
  REQUIRE(::send(partial, recordHeader, sizeof recordHeader, MSG_NOSIGNAL) == 5);
  REQUIRE(eventually([&] { return fixture.server().liveConnections() == 2; }));

  auto start = Clock::now();
  CHECK(closedWithin(silent, 3000ms));
  CHECK(closedWithin(partial, 3000ms));
  CHECK(secondsSince(start) > 0.5);
  CHECK(eventually([&] { return fixture.server().liveConnections() == 0; }));
  ::close(silent);
  ::close(partial);
}

TEST_CASE("idle keep-alive connections are closed after the idle timeout", "[server][limits]") {
  HttpsServerOptions options = quickTimeouts();
  options.idleTimeout = 400ms;
  ServerFixture fixture(options);

  SECTION("after a request") {
    TlsClient client(fixture.port(), fixture.ca());
    REQUIRE(client.handshake());
    REQUIRE(client.send(validRequest()));
    REQUIRE(client.readReply());
    auto answered = Clock::now();
    CHECK(client.closedByPeer());
    CHECK(secondsSince(answered) > 0.3);
    CHECK(secondsSince(answered) < 2.0);
  }
  SECTION("right after the handshake") {
    TlsClient client(fixture.port(), fixture.ca());
    REQUIRE(client.handshake());
    CHECK(client.closedByPeer());
  }
  SECTION("not while requests keep coming") {
    TlsClient client(fixture.port(), fixture.ca());
    REQUIRE(client.handshake());
    for (int i = 0; i < 8; ++i) {  // 1.6 s in all, four idle timeouts
      REQUIRE(client.send(validRequest()));
      auto reply = client.readReply();
      REQUIRE(reply);
      CHECK(reply->status == 200);
      std::this_thread::sleep_for(200ms);
    }
  }
  CHECK(eventually([&] { return fixture.server().liveConnections() == 0; }));
  CHECK(fixture.rejections().empty());
}

TEST_CASE("connections beyond the cap are refused", "[server][limits]") {
  HttpsServerOptions options = smallLimits();
  options.maxConnections = 4;
  ServerFixture fixture(options);

  std::vector<std::unique_ptr<TlsClient>> open;
  for (int i = 0; i < 4; ++i) {
    open.push_back(std::make_unique<TlsClient>(fixture.port(), fixture.ca()));
    REQUIRE(open.back()->handshake());
  }
  CHECK(fixture.server().liveConnections() == 4);

  TlsClient fifth(fixture.port(), fixture.ca());
  CHECK_FALSE(fifth.handshake());
  CHECK(fixture.server().liveConnections() == 4);

  // The connections under the cap are served as before.
  REQUIRE(open[0]->send(validRequest()));
  auto reply = open[0]->readReply();
  REQUIRE(reply);
  CHECK(reply->status == 200);

  // A freed place is taken by the next connection.
  open.pop_back();
  REQUIRE(eventually([&] { return fixture.server().liveConnections() == 3; }));
  TlsClient next(fixture.port(), fixture.ca());
  REQUIRE(next.handshake());
  REQUIRE(next.send(validRequest()));
  reply = next.readReply();
  REQUIRE(reply);
  CHECK(reply->status == 200);
}

TEST_CASE("pipelined requests are answered in order", "[server][limits]") {
  ServerFixture fixture;
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());
  std::string pipeline;
  for (int i = 0; i < 5; ++i) {
    pipeline +=
        validRequest(i % 2 == 0 ? "/validate" : "/mutate", "{\"i\":" + std::to_string(i) + "}");
  }

  SECTION("sent at once") {
    REQUIRE(client.send(pipeline));
  }
  SECTION("split at odd places") {
    for (std::size_t i = 0; i < pipeline.size(); i += 7)
      REQUIRE(client.send(pipeline.substr(i, 7)));
  }
  for (int i = 0; i < 5; ++i) {
    auto reply = client.readReply();
    REQUIRE(reply);
    CHECK(reply->status == 200);
    auto body = nlohmann::json::parse(reply->body);
    CHECK(body["endpoint"] == (i % 2 == 0 ? "validate" : "mutate"));
    CHECK(body["body"] == "{\"i\":" + std::to_string(i) + "}");
  }
  // And the connection goes on.
  REQUIRE(client.send(validRequest()));
  REQUIRE(client.readReply());
}

TEST_CASE("a refused request ends a pipeline", "[server][limits]") {
  ServerFixture fixture;
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());
  REQUIRE(
      client.send(validRequest() + TlsClient::request("GET", "/nowhere", "", "") + validRequest()));
  auto first = client.readReply();
  REQUIRE(first);
  CHECK(first->status == 200);
  auto second = client.readReply();
  REQUIRE(second);
  CHECK(second->status == 404);
  CHECK(client.closedByPeer());
  CHECK(fixture.handlerCalls == 1);
}

TEST_CASE("Connection: close and HTTP/1.0 get one answer, then the connection ends",
          "[server][limits]") {
  ServerFixture fixture;
  for (std::string request :
       {TlsClient::request("POST", "/validate", jsonHeaders(2) + "Connection: close\r\n", "{}"),
        "POST /validate HTTP/1.0\r\n" + jsonHeaders(2) + "\r\n{}"}) {
    INFO(request);
    TlsClient client(fixture.port(), fixture.ca());
    REQUIRE(client.handshake());
    REQUIRE(client.send(request + validRequest()));
    auto reply = client.readReply();
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->header("connection") == "close");
    CHECK(client.closedByPeer());
  }
  CHECK(fixture.handlerCalls == 2);
}

TEST_CASE("a flood of connections is bounded in threads and memory", "[server][limits]") {
  HttpsServerOptions options = smallLimits();
  options.requestTimeout = 10s;  // the flood stays for the whole test
  ServerFixture fixture(options);
  REQUIRE(postJson(fixture.port(), fixture.ca(), "/validate", "{}"));  // warm up

  const long threadsBefore = procStatus("Threads");
  const long rssBeforeKb = procStatus("VmRSS");
  constexpr int kFlood = 300;
  std::vector<int> flood;
  // Each begins a TLS handshake and stalls: the server holds a TLS object and buffers for it.
  const unsigned char clientHelloStart[] = {0x16, 0x03, 0x01, 0x02, 0x00,
                                            0x01, 0x00, 0x01, 0xfc, 0x03};
  for (int i = 0; i < kFlood; ++i) {
    int fd = connectLoopback(fixture.port(), 1000ms);
    REQUIRE(fd >= 0);
    REQUIRE(::send(fd, clientHelloStart, sizeof clientHelloStart, MSG_NOSIGNAL) ==
            sizeof clientHelloStart);
    flood.push_back(fd);
  }
  REQUIRE(eventually([&] { return fixture.server().liveConnections() == kFlood; }));

  // Valid requests are still answered promptly.
  for (int i = 0; i < 5; ++i) {
    auto sent = Clock::now();
    auto reply = postJson(fixture.port(), fixture.ca(), "/validate", "{}");
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(secondsSince(sent) < 0.5);
  }
  const long threadsDuring = procStatus("Threads");
  const long rssGrowthKb = procStatus("VmRSS") - rssBeforeKb;
  INFO("threads " << threadsBefore << " -> " << threadsDuring << ", RSS +" << rssGrowthKb
                  << " KiB for " << kFlood << " connections");
  CHECK(threadsDuring <= threadsBefore + 1);  // no thread per connection (+1: std::async)
  if (kKibPerStalledConnection > 0) CHECK(rssGrowthKb < kFlood * kKibPerStalledConnection);

  for (int fd : flood) ::close(fd);
  CHECK(eventually([&] { return fixture.server().liveConnections() == 0; }));
}
