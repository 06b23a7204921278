// HttpsServerOptions::handlerThreads: a handler that blocks (cluster mode's ledger round trip)
// runs on the pool, and the event loop keeps serving its other connections meanwhile.
#include <atomic>
#include <future>
#include <thread>

#include "catch2/catch.hpp"
#include "test/webhook/https_server_fixture.h"
#include "test/webhook/webhook_test_support.h"
#include "webhook/handler_pool.h"
#include "webhook/https_server.h"

using namespace hybrid_guard::webhook;
using namespace hybrid_guard::webhook::testing;
using namespace std::chrono_literals;

namespace {

std::string post(std::string_view body, std::string_view extraHeaders = "") {
  return TlsClient::request("POST", "/validate",
                            jsonHeaders(body.size()) + std::string(extraHeaders), body);
}

// Blocks the request whose body is "block" until release() (or 8 s pass: then it answers 503,
// which the tests treat as a failure); answers every other body at once.
class Gate {
 public:
  AdmissionHandler handler() {
    return [this](Endpoint, std::string_view body) {
      if (body != "block") return HttpResponse{200, "{\"fast\":true}"};
      entered_.store(true);
      if (released_.wait_for(8s) != std::future_status::ready) {
        return HttpResponse{503, "{\"error\":\"not released\"}"};
      }
      return HttpResponse{200, "{\"released\":true}"};
    };
  }
  void release() { release_.set_value(); }
  bool entered() const { return entered_.load(); }

 private:
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  std::atomic<bool> entered_{false};
};

HttpsServerOptions oneLoopWithPool(std::size_t threads) {
  HttpsServerOptions options = smallLimits();
  options.workers = 1;
  options.handlerThreads = threads;
  return options;
}

}  // namespace

TEST_CASE("a blocked handler on the pool does not hold up the other connections of its loop") {
  Gate gate;
  ServerFixture fixture(oneLoopWithPool(2), gate.handler());

  TlsClient blocked(fixture.port(), fixture.ca());
  REQUIRE(blocked.handshake());
  REQUIRE(blocked.send(post("block")));
  REQUIRE(eventually([&] { return gate.entered(); }));

  // The same loop serves a second connection, and a third request on it, while the first waits.
  TlsClient other(fixture.port(), fixture.ca());
  REQUIRE(other.handshake());
  for (int i = 0; i < 2; ++i) {
    REQUIRE(other.send(post("{}")));
    auto reply = other.readReply();
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->body == "{\"fast\":true}");
  }

  gate.release();
  auto reply = blocked.readReply();
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(reply->body == "{\"released\":true}");
  CHECK(reply->header("connection") != "close");

  // The connection is usable again afterwards.
  REQUIRE(blocked.send(post("{}")));
  auto next = blocked.readReply();
  REQUIRE(next);
  CHECK(next->body == "{\"fast\":true}");
}

TEST_CASE("with the handler inline, a blocked handler holds up its loop (the pool is what helps)") {
  Gate gate;
  ServerFixture fixture(oneLoopWithPool(0), gate.handler());
  TlsClient blocked(fixture.port(), fixture.ca());
  REQUIRE(blocked.handshake());
  REQUIRE(blocked.send(post("block")));
  REQUIRE(eventually([&] { return gate.entered(); }));

  TlsClient other(fixture.port(), fixture.ca());
  // The loop is inside the handler: not even the handshake of a new connection gets done.
  std::thread releaser([&] {
    std::this_thread::sleep_for(300ms);
    gate.release();
  });
  auto started = std::chrono::steady_clock::now();
  REQUIRE(other.handshake());
  CHECK(std::chrono::steady_clock::now() - started >= 250ms);
  releaser.join();
  auto reply = blocked.readReply();
  REQUIRE(reply);
  CHECK(reply->body == "{\"released\":true}");
}

TEST_CASE("pipelined requests behind a pooled one are answered in order") {
  Gate gate;
  ServerFixture fixture(oneLoopWithPool(2), gate.handler());
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());
  REQUIRE(client.send(post("block") + post("{}") + post("{}")));
  REQUIRE(eventually([&] { return gate.entered(); }));
  gate.release();
  auto first = client.readReply();
  REQUIRE(first);
  CHECK(first->body == "{\"released\":true}");
  for (int i = 0; i < 2; ++i) {
    auto reply = client.readReply();
    REQUIRE(reply);
    CHECK(reply->body == "{\"fast\":true}");
  }
  CHECK(fixture.handlerCalls == 3);
}

TEST_CASE("stopping the server waits for a pooled request and answers it with Connection: close") {
  Gate gate;
  ServerFixture fixture(oneLoopWithPool(1), gate.handler());
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());
  REQUIRE(client.send(post("block")));
  REQUIRE(eventually([&] { return gate.entered(); }));

  auto stopped = std::async(std::launch::async, [&] { fixture.server().stop(); });
  CHECK(stopped.wait_for(100ms) == std::future_status::timeout);  // waits for the answer
  gate.release();
  auto reply = client.readReply();
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(reply->body == "{\"released\":true}");
  CHECK(reply->header("connection") == "close");
  CHECK(stopped.wait_for(5s) == std::future_status::ready);
  CHECK(client.closedByPeer());
}

TEST_CASE("a handler that throws on the pool is a 500, and the connection goes on") {
  HttpsServerOptions options = oneLoopWithPool(2);
  ServerFixture fixture(options, [](Endpoint, std::string_view body) -> HttpResponse {
    if (body == "throw") throw std::runtime_error("boom");
    return HttpResponse{200, "{}"};
  });
  TlsClient client(fixture.port(), fixture.ca());
  REQUIRE(client.handshake());
  REQUIRE(client.send(post("throw")));
  auto failed = client.readReply();
  REQUIRE(failed);
  CHECK(failed->status == 500);
  CHECK(failed->body == "{\"error\":\"internal error\"}");
  REQUIRE(client.send(post("{}")));
  auto next = client.readReply();
  REQUIRE(next);
  CHECK(next->status == 200);
}

TEST_CASE("HandlerPool runs every task submitted before it is destroyed") {
  std::atomic<int> ran{0};
  {
    HandlerPool pool(3);
    for (int i = 0; i < 100; ++i) pool.submit([&] { ran.fetch_add(1); });
  }
  CHECK(ran.load() == 100);
}
