// DESIGN §8: the Sidecar list+watch against recorded API responses (pages, bookmarks, 410 Gone,
// a refused watch, a disconnect), served by a local fake API server.
#include "webhook/sidecar_informer.h"

#include "catch2/catch.hpp"
#include "test/webhook/fake_api_server.h"

using namespace hybrid_guard::webhook;
using namespace hybrid_guard::webhook::testing;
using nlohmann::json;

namespace {

std::string listBody(std::vector<json> items, const std::string& resourceVersion,
                     const std::string& continueToken = "") {
  json metadata = {{"resourceVersion", resourceVersion}};
  if (!continueToken.empty()) metadata["continue"] = continueToken;
  return json{{"apiVersion", "networking.istio.io/v1beta1"},
              {"kind", "SidecarList"},
              {"metadata", metadata},
              {"items", items}}
      .dump();
}

std::set<std::string> names(const StateStore& state) {
  std::set<std::string> out;
  auto snapshot = state.snapshot();
  for (const auto& [ns, n] : snapshot.countsByNamespace()) {
    for (const auto& [name, s] : *snapshot.inNamespace(ns)) out.insert(ns + "/" + name);
  }
  return out;
}

struct Fixture {
  FakeApiServer api;
  std::unique_ptr<KubeClient> client;
  MetricsRegistry registry;
  ClusterMetrics metrics{registry};
  StateStore state;
  std::mutex mutex;
  std::vector<std::string> gone;
  std::vector<std::string> logs;
  std::map<std::string, size_t> counts;
  std::unique_ptr<SidecarInformer> informer;

  Fixture() {
    auto created = KubeClient::create(api.clientConfig());
    REQUIRE(created.ok());
    client = std::move(created).value();
  }
  void start() {
    SidecarInformer::Options options;
    options.backoffMin = std::chrono::milliseconds(20);
    options.backoffMax = std::chrono::milliseconds(100);
    options.pageSize = 2;
    SidecarInformer::Observer observer;
    observer.onGone = [this](const ObjectKey& key, const std::string& uid, auto) {
      std::lock_guard lock(mutex);
      gone.push_back(key.first + "/" + key.second + " " + uid);
    };
    informer = std::make_unique<SidecarInformer>(
        *client, state, metrics,
        [this](spdlog::level::level_enum, const std::string& msg, const json&) {
          std::lock_guard lock(mutex);
          logs.push_back(msg);
        },
        options, std::move(observer),
        [this](const std::string& ns, size_t n) {
          std::lock_guard lock(mutex);
          counts[ns] = n;
        });
    informer->start();
  }
  std::vector<std::string> goneNow() {
    std::lock_guard lock(mutex);
    return gone;
  }
  std::string metric(const std::string& series) {
    std::string text = registry.render();
    auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return "";
    auto start = at + series.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
  }
};

}  // namespace

TEST_CASE("informer: pages, bookmarks, refused watch, disconnect, 410 Gone", "[informer]") {
  Fixture f;
  // The first list comes in two pages; a plain Sidecar is not hybrid and never counted.
  f.api.queueList({200, listBody({sidecarObject("pay", "h1", "aaaaaaaa-1", true),
                                  sidecarObject("pay", "plain", "bbbbbbbb-1", false)},
                                 "", "page-2")});
  f.api.queueList({200, listBody({sidecarObject("shop", "h2", "cccccccc-1", true)}, "100")});
  // The first watch is refused (reconnect after a backoff, same resourceVersion) ...
  f.api.queueWatch({500, R"({"kind":"Status","code":500,"message":"etcd unavailable"})"});
  // ... the second adds h3, bookmarks 150, then the server drops the connection.
  f.api.queueWatch({200,
                    "",
                    {watchEvent("ADDED", sidecarObject("pay", "h3", "dddddddd-1", true, "101")),
                     bookmark("150")}});
  // Resumed at the bookmark: h1 loses its tls (gone), then the watch has expired: 410.
  f.api.queueWatch({200,
                    "",
                    {watchEvent("MODIFIED", sidecarObject("pay", "h1", "aaaaaaaa-1", false, "151")),
                     json{{"type", "ERROR"},
                          {"object", {{"kind", "Status"}, {"code", 410}, {"reason", "Expired"}}}}
                         .dump()}});
  // The relist is the truth now (h4 appeared meanwhile, h3 went away unseen) ...
  f.api.queueList({200, listBody({sidecarObject("shop", "h2", "cccccccc-1", true),
                                  sidecarObject("shop", "h4", "eeeeeeee-1", true)},
                                 "300")});
  // ... and a watch from it deletes h4, then stays open.
  f.api.queueWatch({200,
                    "",
                    {watchEvent("DELETED", sidecarObject("shop", "h4", "eeeeeeee-1", true, "301"))},
                    true});

  CHECK_FALSE(f.metric("hybrid_guard_cluster_state_synced") == "1");
  f.start();
  REQUIRE(eventually([&] {
    return f.api.requestsMatching("/apis/networking.istio.io/v1beta1/sidecars?").size() >= 7;
  }));
  REQUIRE(eventually([&] { return names(f.state) == std::set<std::string>{"shop/h2"}; }));
  CHECK(f.informer->synced());
  CHECK(f.informer->version() == "v1beta1");
  CHECK(f.metric("hybrid_guard_cluster_state_synced") == "1");

  auto sidecarRequests = f.api.requestsMatching("/apis/networking.istio.io/v1beta1/sidecars");
  REQUIRE(sidecarRequests.size() == 7);
  CHECK(sidecarRequests[0] == "/apis/networking.istio.io/v1beta1/sidecars?limit=2");
  CHECK(sidecarRequests[1] == "/apis/networking.istio.io/v1beta1/sidecars?continue=page-2&limit=2");
  const std::string watchAt =
      "/apis/networking.istio.io/v1beta1/sidecars?allowWatchBookmarks=true&resourceVersion=";
  CHECK(sidecarRequests[2] == watchAt + "100&timeoutSeconds=300&watch=true");
  CHECK(sidecarRequests[3] == watchAt + "100&timeoutSeconds=300&watch=true");  // same RV
  CHECK(sidecarRequests[4] == watchAt + "150&timeoutSeconds=300&watch=true");  // the bookmark
  CHECK(sidecarRequests[5] == "/apis/networking.istio.io/v1beta1/sidecars?limit=2");  // relist
  CHECK(sidecarRequests[6] == watchAt + "300&timeoutSeconds=300&watch=true");

  auto stored = f.informer->storedHybrid();
  CHECK(stored == std::map<ObjectKey, std::string>{{{"shop", "h2"}, "cccccccc-1"}});
  CHECK(f.goneNow() == std::vector<std::string>{"pay/h1 aaaaaaaa-1", "shop/h4 eeeeeeee-1"});
  CHECK(f.metric("hybrid_guard_sidecar_watch_restarts_total{reason=\"error\"}") == "1");
  CHECK(f.metric("hybrid_guard_sidecar_watch_restarts_total{reason=\"closed\"}") == "1");
  CHECK(f.metric("hybrid_guard_sidecar_watch_restarts_total{reason=\"gone\"}") == "1");
  CHECK(f.metric("hybrid_guard_sidecar_watch_events_total{type=\"BOOKMARK\"}") == "1");
  CHECK(f.metric("hybrid_guard_sidecar_watch_events_total{type=\"ADDED\"}") == "1");
  CHECK(f.metric("hybrid_guard_sidecar_watch_events_total{type=\"MODIFIED\"}") == "1");
  CHECK(f.metric("hybrid_guard_sidecar_watch_events_total{type=\"DELETED\"}") == "1");
  CHECK(f.metric("hybrid_guard_sidecar_watch_events_total{type=\"ERROR\"}") == "1");
  {
    std::lock_guard lock(f.mutex);
    CHECK(f.counts["pay"] == 0);  // emptied by the relist: the gauge goes to 0, not stale
    CHECK(f.counts["shop"] == 1);
  }
  CHECK(f.api.lastAuthorization() == "Bearer test-token");
  f.informer->stop();  // ends the open watch promptly
}

TEST_CASE("informer: not synced while the list fails; a 410 on the watch request relists",
          "[informer]") {
  Fixture f;
  f.api.queueList({403, R"({"kind":"Status","code":403,"message":"sidecars is forbidden"})"});
  f.api.queueList({200, listBody({sidecarObject("pay", "h1", "aaaaaaaa-1", true)}, "10")});
  f.api.queueWatch({410, R"({"kind":"Status","code":410,"reason":"Expired"})"});
  f.api.queueList({200, listBody({}, "20")});
  f.start();
  REQUIRE(eventually([&] {
    return f.api.requestsMatching("/apis/networking.istio.io/v1beta1/sidecars?").size() >= 5;
  }));
  REQUIRE(eventually([&] { return names(f.state).empty() && f.informer->synced(); }));
  CHECK(f.metric("hybrid_guard_sidecar_watch_restarts_total{reason=\"gone\"}") == "1");
  auto requests = f.api.requestsMatching("/apis/networking.istio.io/v1beta1/sidecars");
  CHECK(requests[4].find("resourceVersion=20") != std::string::npos);
  {
    std::lock_guard lock(f.mutex);
    CHECK(std::find(f.logs.begin(), f.logs.end(), "listing Sidecars failed") != f.logs.end());
  }
  f.informer->stop();
}

TEST_CASE("informer: an unreadable event line reconnects instead of crashing", "[informer]") {
  Fixture f;
  f.api.queueList({200, listBody({}, "5")});
  f.api.queueWatch(
      {200, "", {"{not json", watchEvent("ADDED", sidecarObject("a", "x", "1", true))}});
  f.api.queueWatch({200,
                    "",
                    {watchEvent("ADDED", sidecarObject("pay", "late", "ffffffff-1", true, "6"))},
                    true});
  f.start();
  REQUIRE(eventually([&] { return names(f.state) == std::set<std::string>{"pay/late"}; }));
  CHECK(f.metric("hybrid_guard_sidecar_watch_restarts_total{reason=\"error\"}") == "1");
  f.informer->stop();
}
