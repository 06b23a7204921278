#include "webhook/side_port_server.h"

#include <atomic>
#include <mutex>

#include "catch2/catch.hpp"
#include "test/webhook/webhook_test_support.h"
#include "webhook/metrics.h"

using namespace hybrid_guard::webhook;
using namespace hybrid_guard::webhook::testing;

TEST_CASE("the side port answers health, readiness and metrics", "[side-port]") {
  std::mutex mutex;
  std::optional<std::string> notReady = "policy not loaded";
  MetricsRegistry registry;
  Counter& reloads =
      registry.counter("hybrid_guard_policy_reloads_total", "Policy reloads.", {"result"})
          .labels({"success"});
  SidePortServer server(SidePortHandlers{[&] {
                                           std::lock_guard lock(mutex);
                                           return notReady;
                                         },
                                         [&] { return registry.render(); }});
  REQUIRE(server.start("127.0.0.1", 0).ok());
  REQUIRE(server.port() > 0);

  SECTION("healthz") {
    auto reply = httpGet(server.port(), "/healthz");
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->body == "ok");
  }
  SECTION("readyz follows the readiness callback") {
    auto waiting = httpGet(server.port(), "/readyz");
    REQUIRE(waiting);
    CHECK(waiting->status == 503);
    CHECK_THAT(waiting->body, Catch::Contains("policy not loaded"));
    {
      std::lock_guard lock(mutex);
      notReady.reset();
    }
    auto ready = httpGet(server.port(), "/readyz");
    REQUIRE(ready);
    CHECK(ready->status == 200);
    CHECK(ready->body == "ok");
  }
  SECTION("metrics in the Prometheus text format") {
    reloads.inc();
    auto reply = httpGet(server.port(), "/metrics");
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->header("content-type") == "text/plain; version=0.0.4");
    CHECK_THAT(reply->body,
               Catch::Contains("hybrid_guard_policy_reloads_total{result=\"success\"} 1\n"));
    CHECK(reply->body == registry.render());
  }
  SECTION("one request per connection, so stop never waits for idle clients") {
    auto reply = httpGet(server.port(), "/healthz");
    REQUIRE(reply);
    CHECK(reply->header("connection") == "close");
  }
  SECTION("anything else is 404") {
    auto reply = httpGet(server.port(), "/validate");
    REQUIRE(reply);
    CHECK(reply->status == 404);
  }
  SECTION("after stop nothing answers") {
    server.stop();
    CHECK_FALSE(httpGet(server.port(), "/healthz"));
  }
}

TEST_CASE("side port callbacks that throw give 500, the server keeps serving", "[side-port]") {
  std::atomic<int> calls{0};
  SidePortServer server(SidePortHandlers{[&]() -> std::optional<std::string> {
                                           if (calls++ == 0)
                                             throw std::runtime_error("state unknown");
                                           return std::nullopt;
                                         },
                                         {}});
  REQUIRE(server.start("127.0.0.1", 0).ok());
  auto failed = httpGet(server.port(), "/readyz");
  REQUIRE(failed);
  CHECK(failed->status == 500);
  auto ready = httpGet(server.port(), "/readyz");
  REQUIRE(ready);
  CHECK(ready->status == 200);
  auto metrics = httpGet(server.port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->body.empty());
}
