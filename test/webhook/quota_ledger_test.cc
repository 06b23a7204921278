// DESIGN §8: the quota ledger: its ConfigMap format, reservations with optimistic concurrency
// (409 then re-read), fail closed, dry-run never charged, and reconciliation (grace, deletion,
// recount), against a fake API server with resourceVersion semantics.
#include "webhook/quota_ledger.h"

#include <atomic>
#include <thread>

#include "catch2/catch.hpp"
#include "test/support/engine_helpers.h"
#include "test/webhook/admission_fixture.h"
#include "test/webhook/fake_api_server.h"
#include "webhook/admission_codec.h"

using namespace hybrid_guard;
using namespace hybrid_guard::webhook;
using namespace hybrid_guard::webhook::testing;
using nlohmann::json;

namespace {

const char* kPolicy = R"(
  namespaces:
    - {name: pay, maxWorkloads: 3}
    - {pattern: "c-[0-9]+", maxWorkloads: 10}
  maxWorkloads: 5
)";

json hybridSidecar(const std::string& ns, const std::string& name, const std::string& uid) {
  return sidecarObject(ns, name, uid, true);
}

struct LedgerFixture {
  FakeApiServer api;
  std::unique_ptr<KubeClient> client;
  MetricsRegistry registry;
  ClusterMetrics metrics{registry};
  std::mutex mutex;
  std::optional<std::map<ObjectKey, std::string>> stored = std::map<ObjectKey, std::string>{};
  std::vector<std::string> logs;
  std::atomic<std::int64_t> clockMs{1'800'000'000'000};
  std::unique_ptr<QuotaLedger> ledger;

  explicit LedgerFixture(std::chrono::milliseconds deadline = std::chrono::milliseconds(2000)) {
    auto created = KubeClient::create(api.clientConfig());
    REQUIRE(created.ok());
    client = std::move(created).value();
    LedgerOptions options;
    options.namespace_ = "hybrid-guard";
    options.grace = std::chrono::seconds(30);
    options.deadline = deadline;
    options.now = [this] {
      return std::chrono::system_clock::time_point(std::chrono::milliseconds(clockMs.load()));
    };
    ledger = std::make_unique<QuotaLedger>(
        *client,
        [this] {
          std::lock_guard lock(mutex);
          return stored;
        },
        metrics,
        [this](spdlog::level::level_enum, const std::string& msg, const json& fields) {
          std::lock_guard lock(mutex);
          logs.push_back(msg + " " + fields.value("name", ""));
        },
        options);
  }

  policy::Decision admit(const json& object, bool dryRun = false, const policy::State& watched = {},
                         const std::string& policyYaml = kPolicy) {
    auto p = test::policyFrom(policyYaml);
    test::TestRequest r(object);
    r.request.dryRun = dryRun;
    policy::Decision local = policy::decide(r.request, *p, watched, policy::Phase::Validate);
    return ledger->decideWithLedger(r.request, *p, watched, local);
  }

  std::string metric(const std::string& series) {
    std::string text = registry.render();
    auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return "";
    auto start = at + series.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
  }
  bool logged(const std::string& line) {
    std::lock_guard lock(mutex);
    return std::find(logs.begin(), logs.end(), line) != logs.end();
  }
};

std::vector<std::string> ids(const std::vector<policy::Finding>& findings) {
  return test::ruleIds(findings);
}

}  // namespace

TEST_CASE("ledger format: one key per namespace, one line per reservation", "[ledger]") {
  Ledger ledger;
  ledger.resourceVersion = "7";
  ledger.entries[{"pay", "web"}] = {"0a1b2c3d", 1800000000123};
  ledger.entries[{"pay", "api"}] = {"", 1800000000000};
  ledger.entries[{"shop", "front"}] = {"ffffffff", 5};
  CHECK(ledger.data() == json{{"pay", "api - 1800000000000\nweb 0a1b2c3d 1800000000123\n"},
                              {"shop", "front ffffffff 5\n"}});
  CHECK(ledger.countIn("pay") == 2);
  CHECK(ledger.countIn("none") == 0);

  json cm = {{"metadata", {{"resourceVersion", "8"}}}, {"data", ledger.data()}};
  auto back = Ledger::fromConfigMap(cm);
  REQUIRE(back.ok());
  CHECK(back.value().entries == ledger.entries);
  CHECK(back.value().resourceVersion == "8");
  CHECK(back.value().malformed.empty());

  SECTION("unreadable lines are reported, never fatal") {
    cm["data"]["pay"] = "ok 0a1b2c3d 1\nbad line\nUPPER 0a1b2c3d 1\nx 0a1b2c3d 1 extra\n";
    cm["data"]["Not_A_Namespace"] = "x - 1\n";
    cm["data"]["num"] = 42;
    auto read = Ledger::fromConfigMap(cm);
    REQUIRE(read.ok());
    CHECK(read.value().entries.size() == 2);  // pay/ok and shop/front
    CHECK(read.value().malformed.size() == 5);
  }
  SECTION("not a ConfigMap") {
    CHECK_FALSE(Ledger::fromConfigMap(json::array()).ok());
    CHECK_FALSE(Ledger::fromConfigMap(json{{"metadata", json::object()}}).ok());
    CHECK_FALSE(
        Ledger::fromConfigMap(json{{"metadata", {{"resourceVersion", "1"}}}, {"data", 1}}).ok());
  }
  SECTION("10,000 reservations stay well inside the 1 MiB object limit") {
    Ledger big;
    for (int i = 0; i < 10000; ++i) {
      big.entries[{"namespace-" + std::to_string(i % 500),
                   "workload-sidecar-" + std::to_string(i)}] = {"0a1b2c3d", 1800000000000 + i};
    }
    CHECK(big.dataBytes() < 600 * 1024);
  }
  CHECK(shortUid("9b66d0b7-3183-42ec-8636-fc784cc7952d") == "9b66d0b7");
  CHECK(shortUid("short") == "");
  CHECK(shortUid("not-hexx-1234") == "");
}

TEST_CASE("ledger: a reservation is written with the resourceVersion read", "[ledger]") {
  LedgerFixture f;
  auto d = f.admit(hybridSidecar("pay", "a", "0a1b2c3d-0000"));
  CHECK(d.allowed);
  CHECK(d.violations.empty());
  CHECK(f.api.configMapPuts() == 1);
  CHECK(f.api.configMapData() == json{{"pay", "a 0a1b2c3d 1800000000000\n"}});
  CHECK(f.metric("hybrid_guard_ledger_reserve_requests_total{result=\"reserved\"}") == "1");
  CHECK(f.metric("hybrid_guard_ledger_reservations") == "1");
  CHECK(f.logged("quota slot reserved a"));

  SECTION("the same object again (a retried request) is not charged twice") {
    CHECK(f.admit(hybridSidecar("pay", "a", "0a1b2c3d-0000")).allowed);
    CHECK(f.api.configMapPuts() == 1);
  }
  SECTION("reservations of other replicas count: the quota is seen full") {
    f.api.setConfigMapData({{"pay", "a 0a1b2c3d 1\nb 11111111 1\nc 22222222 1\n"}});
    auto full = f.admit(hybridSidecar("pay", "d", "33333333-0000"));
    CHECK_FALSE(full.allowed);
    REQUIRE(ids(full.violations) == std::vector<std::string>{"namespace-quota-exceeded"});
    CHECK(
        full.violations[0].message ==
        "namespace \"pay\" already has 3 of its 3 hybrid workloads (a (reserved), b (reserved), c "
        "(reserved)); remove tls from one of them or raise maxWorkloads for the namespace");
    CHECK(full.change.kind == policy::StateChange::Kind::None);
    CHECK(f.metric("hybrid_guard_ledger_reserve_requests_total{result=\"refused\"}") == "1");
  }
  SECTION("watched and reserved are one slot, not two") {
    policy::State watched;
    test::admit(watched, hybridSidecar("pay", "a", "0a1b2c3d-0000"));
    test::admit(watched, hybridSidecar("pay", "b", "11111111-0000"));
    CHECK(f.admit(hybridSidecar("pay", "c", "22222222-0000"), false, watched).allowed);
  }
  SECTION("dry-run is evaluated against the ledger, never charged") {
    f.api.setConfigMapData({{"pay", "a 0a1b2c3d 1\nb 11111111 1\n"}});
    int puts = f.api.configMapPuts();
    CHECK(f.admit(hybridSidecar("pay", "c", "22222222-0000"), true).allowed);
    CHECK(f.api.configMapPuts() == puts);
    f.api.setConfigMapData({{"pay", "a 0a1b2c3d 1\nb 11111111 1\nc 22222222 1\n"}});
    auto refused = f.admit(hybridSidecar("pay", "d", "33333333-0000"), true);
    CHECK(ids(refused.violations) == std::vector<std::string>{"namespace-quota-exceeded"});
    CHECK(f.api.configMapPuts() == puts);
  }
}

TEST_CASE("ledger: a review decoded as the server decodes it records the object's uid",
          "[ledger]") {
  // The server builds only the parts of a review that are read (parseJsonKeeping); the ledger's
  // uid must be one of them, or delete and recreate could not be told apart.
  LedgerFixture f;
  json sidecar = hybridSidecar("pay", "a", "9b66d0b7-3183-42ec-8636-fc784cc7952d");
  webhook::DecodedReview decoded;
  REQUIRE_FALSE(webhook::decodeAdmissionReview(
      std::string_view(review("admission.k8s.io/v1", "r1", sidecar).dump()), decoded));
  auto p = test::policyFrom(kPolicy);
  policy::Decision local = policy::decide(decoded.request, *p, {}, policy::Phase::Validate);
  auto d = f.ledger->decideWithLedger(decoded.request, *p, {}, local);
  CHECK(d.allowed);
  CHECK(f.api.configMapData() == json{{"pay", "a 9b66d0b7 1800000000000\n"}});
}

TEST_CASE("ledger: on 409 Conflict it re-reads and checks again", "[ledger]") {
  LedgerFixture f;
  f.api.setConfigMapData({{"pay", "a 0a1b2c3d 1\nb 11111111 1\n"}});
  SECTION("another replica took the last slot meanwhile: refused with the quota message") {
    std::atomic<bool> once{false};
    f.api.beforeConfigMapPut = [&] {
      if (!once.exchange(true)) {
        f.api.setConfigMapData({{"pay", "a 0a1b2c3d 1\nb 11111111 1\nz 99999999 1\n"}});
      }
    };
    auto d = f.admit(hybridSidecar("pay", "c", "22222222-0000"));
    CHECK_FALSE(d.allowed);
    REQUIRE(ids(d.violations) == std::vector<std::string>{"namespace-quota-exceeded"});
    CHECK_THAT(d.violations[0].message, Catch::Contains("z (reserved)"));
    CHECK(f.api.configMapConflicts() == 1);
    CHECK(f.api.configMapPuts() == 0);
    CHECK(f.metric("hybrid_guard_ledger_conflicts_total") == "1");
  }
  SECTION("another namespace's write only delays it: reserved on the second try") {
    std::atomic<bool> once{false};
    f.api.beforeConfigMapPut = [&] {
      if (!once.exchange(true)) {
        f.api.setConfigMapData({{"pay", "a 0a1b2c3d 1\nb 11111111 1\n"}, {"c-1", "x - 1\n"}});
      }
    };
    auto d = f.admit(hybridSidecar("pay", "c", "22222222-0000"));
    CHECK(d.allowed);
    CHECK(f.api.configMapConflicts() == 1);
    CHECK(f.api.configMapData() ==
          json{{"pay", "a 0a1b2c3d 1\nb 11111111 1\nc 22222222 1800000000000\n"},
               {"c-1", "x - 1\n"}});
  }
}

TEST_CASE("ledger: concurrent admissions never pass the quota", "[ledger][concurrency]") {
  LedgerFixture f;
  auto p = test::policyFrom(kPolicy);
  constexpr int kRequests = 24;
  std::vector<std::thread> threads;
  std::atomic<int> admitted{0}, quotaRefused{0}, other{0};
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      char uid[16];
      std::snprintf(uid, sizeof uid, "%08x", i + 1);
      auto d = f.admit(hybridSidecar("pay", "s" + std::to_string(i), std::string(uid) + "-0"));
      if (d.allowed) {
        ++admitted;
      } else if (ids(d.violations) == std::vector<std::string>{"namespace-quota-exceeded"}) {
        ++quotaRefused;
      } else {
        ++other;
        UNSCOPED_INFO(d.denialMessage());
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(admitted == 3);
  CHECK(quotaRefused == kRequests - 3);
  CHECK(other == 0);
  auto lines = f.api.configMapData()["pay"].get<std::string>();
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 3);
  CHECK(f.metric("hybrid_guard_ledger_reserve_requests_total{result=\"reserved\"}") == "3");
}

TEST_CASE("ledger: fails closed when it cannot decide", "[ledger]") {
  SECTION("not synced yet") {
    LedgerFixture f;
    f.stored = std::nullopt;
    auto d = f.admit(hybridSidecar("pay", "a", "0a1b2c3d-0"));
    CHECK_FALSE(d.allowed);
    REQUIRE(ids(d.violations) == std::vector<std::string>{"quota-ledger"});
    CHECK_THAT(d.violations[0].message, Catch::Contains("not synced"));
    CHECK(f.api.configMapPuts() == 0);
    CHECK(f.metric("hybrid_guard_ledger_reserve_requests_total{result=\"unavailable\"}") == "1");
  }
  SECTION("contended past the deadline: the conflict message") {
    LedgerFixture f(std::chrono::milliseconds(300));
    f.api.beforeConfigMapPut = [&] { f.api.setConfigMapData(json::object()); };  // always stale
    auto d = f.admit(hybridSidecar("pay", "a", "0a1b2c3d-0"));
    CHECK_FALSE(d.allowed);
    REQUIRE(ids(d.violations) == std::vector<std::string>{"quota-ledger"});
    CHECK_THAT(d.violations[0].message, Catch::Contains("stayed contended for 300 ms"));
    CHECK(f.api.configMapConflicts() >= 2);
    CHECK(d.change.kind == policy::StateChange::Kind::None);
  }
  SECTION("the ledger ConfigMap missing: fail closed, saying so") {
    LedgerFixture f;
    LedgerOptions options;
    options.namespace_ = "elsewhere";
    QuotaLedger other(
        *f.client, [] { return std::map<ObjectKey, std::string>{}; }, f.metrics,
        [](auto, const std::string&, const json&) {}, options);
    auto p = test::policyFrom(kPolicy);
    json object = hybridSidecar("pay", "a", "0a1b2c3d-0");
    test::TestRequest r(object);
    auto d = other.decideWithLedger(r.request, *p, {}, policy::decide(r.request, *p, {}));
    CHECK_FALSE(d.allowed);
    REQUIRE(ids(d.violations) == std::vector<std::string>{"quota-ledger"});
    CHECK_THAT(d.violations[0].message, Catch::Contains("cannot read the quota ledger"));
  }
  SECTION("warn mode admits with a warning instead") {
    LedgerFixture f;
    f.stored = std::nullopt;
    auto d = f.admit(hybridSidecar("pay", "a", "0a1b2c3d-0"), false, {},
                     std::string("  enforcement: warn\n") + kPolicy);
    CHECK(d.allowed);
    CHECK(d.violations.empty());
    REQUIRE(ids(d.warnings) == std::vector<std::string>{"quota-ledger"});
  }
}

TEST_CASE("ledger: reconciliation releases, repairs and logs", "[ledger][reconcile]") {
  LedgerFixture f;
  const std::int64_t t0 = f.clockMs.load();
  f.api.setConfigMapData({{"pay",
                           "kept 0a1b2c3d " + std::to_string(t0) + "\n" +         // stored
                               "pending 11111111 " + std::to_string(t0) + "\n" +  // within grace
                               "old 22222222 " + std::to_string(t0 - 31000) + "\n" +  // expired
                               "gone 33333333 " + std::to_string(t0 - 5000) + "\n" +  // deleted
                               "recreated 44444444 " + std::to_string(t0) + "\n"}});
  {
    std::lock_guard lock(f.mutex);
    f.stored = std::map<ObjectKey, std::string>{{{"pay", "kept"}, "0a1b2c3d-x"},
                                                {{"pay", "recreated"}, "55555555-x"},
                                                {{"shop", "made-while-down"}, "66666666-x"}};
  }
  // The watch saw pay/gone deleted after it was reserved; a deletion of pay/pending's *older*
  // incarnation (before its reservation) must not release it.
  auto at = [](std::int64_t ms) {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
  };
  f.ledger->noteGone({"pay", "gone"}, "33333333-x", at(t0 - 1000));
  f.ledger->noteGone({"pay", "pending"}, "11111111-x", at(t0 - 10000));
  REQUIRE(f.ledger->reconcileOnce().ok());
  CHECK(f.api.configMapData() ==
        json{{"pay", "kept 0a1b2c3d " + std::to_string(t0) + "\npending 11111111 " +
                         std::to_string(t0) + "\nrecreated 55555555 " + std::to_string(t0) + "\n"},
             {"shop", "made-while-down 66666666 " + std::to_string(t0) + "\n"}});
  CHECK(f.metric("hybrid_guard_ledger_releases_total{reason=\"deleted\"}") == "1");
  CHECK(f.metric("hybrid_guard_ledger_releases_total{reason=\"expired\"}") == "1");
  CHECK(f.metric("hybrid_guard_ledger_repairs_total") == "1");
  CHECK(f.metric("hybrid_guard_ledger_reservations") == "4");
  CHECK(f.logged("reservation released: the Sidecar went away gone"));
  CHECK(f.logged("reservation released: not stored as hybrid within the grace period old"));
  CHECK(
      f.logged("ledger recount: stored hybrid Sidecar had no reservation; added made-while-down"));

  // Nothing to do: no write at all.
  int puts = f.api.configMapPuts();
  REQUIRE(f.ledger->reconcileOnce().ok());
  CHECK(f.api.configMapPuts() == puts);

  // Past the grace period, the reservation never stored as hybrid goes too.
  f.clockMs += 30000;
  REQUIRE(f.ledger->reconcileOnce().ok());
  CHECK(f.api.configMapData()["pay"].get<std::string>().find("pending") == std::string::npos);
  CHECK(f.metric("hybrid_guard_ledger_releases_total{reason=\"expired\"}") == "2");

  SECTION("before the watch has synced nothing is released") {
    f.stored = std::nullopt;
    f.clockMs += 3600000;
    int before = f.api.configMapPuts();
    REQUIRE(f.ledger->reconcileOnce().ok());
    CHECK(f.api.configMapPuts() == before);
  }
}
