// DESIGN §4 quotas and §8 state: counting, UPDATE, DELETE, dry-run, warn mode.
#include <catch2/catch.hpp>

#include "test/support/engine_helpers.h"

using namespace hybrid_guard;
using hybrid_guard::test::decideOn;
using hybrid_guard::test::policyFrom;
using hybrid_guard::test::ruleIds;
using hybrid_guard::test::yaml;
using nlohmann::json;
using Ids = std::vector<std::string>;
using Kind = policy::StateChange::Kind;

namespace {

json sidecar(const std::string& ns, const std::string& name, const std::string& app) {
  json s = yaml(R"(
apiVersion: networking.istio.io/v1beta1
kind: Sidecar
spec:
  ingress:
  - port: {number: 8443, protocol: HTTPS}
    tls: {mode: SIMPLE, serverCertificate: /etc/certs/tls.crt, privateKey: /etc/certs/tls.key}
)");
  s["metadata"] = {{"name", name}, {"namespace", ns}};
  s["spec"]["workloadSelector"] = {{"labels", {{"app", app}}}};
  return s;
}

// Runs a request and applies its change when admitted, as the webhook and eval do.
policy::Decision admitInto(policy::State& state, const policy::Policy& p, const json& object,
                           policy::Operation op = policy::Operation::Create,
                           const json& old = nullptr, bool dryRun = false) {
  test::TestRequest r(object, op, old);
  r.request.dryRun = dryRun;
  if (op == policy::Operation::Delete) {
    r.request.name = old["metadata"]["name"];
    r.request.namespace_ = old["metadata"]["namespace"];
  }
  auto d = policy::decide(r.request, p, state);
  if (d.allowed) policy::applyChange(state, d.change);
  return d;
}

const char* kPolicy = R"(
  namespaces:
    - {name: payments, maxWorkloads: 2}
    - {name: shop}
    - {pattern: "edge-.*", maxWorkloads: 1}
    - {name: frozen, maxWorkloads: 0}
  maxWorkloads: 3
)";

}  // namespace

TEST_CASE("namespace-quota-exceeded", "[quota][namespace-quota-exceeded]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  CHECK(admitInto(state, *p, sidecar("payments", "a", "a")).allowed);
  CHECK(admitInto(state, *p, sidecar("payments", "b", "b")).allowed);
  auto d = admitInto(state, *p, sidecar("payments", "c", "c"));
  CHECK_FALSE(d.allowed);
  REQUIRE(ruleIds(d.violations) == Ids{"namespace-quota-exceeded"});
  CHECK(d.violations[0].path == "metadata.namespace");
  CHECK(d.violations[0].message ==
        "namespace \"payments\" already has 2 of its 2 hybrid workloads (a, b); remove tls from "
        "one of them or raise maxWorkloads for the namespace");
  CHECK(state.namespaceCount("payments") == 2);
  CHECK(state.total() == 2);
}

TEST_CASE("namespace quota defaults to 1 and applies per matching namespace", "[quota]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  CHECK(admitInto(state, *p, sidecar("shop", "a", "a")).allowed);
  CHECK(ruleIds(admitInto(state, *p, sidecar("shop", "b", "b")).violations) ==
        Ids{"namespace-quota-exceeded"});
  CHECK(admitInto(state, *p, sidecar("edge-eu", "a", "a")).allowed);
  CHECK(admitInto(state, *p, sidecar("edge-us", "a", "a")).allowed);
  CHECK(ruleIds(admitInto(state, *p, sidecar("edge-us", "b", "b")).violations) ==
        Ids{"namespace-quota-exceeded", "cluster-quota-exceeded"});
}

TEST_CASE("an entry with maxWorkloads 0 is allowed but full", "[quota]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  CHECK(ruleIds(admitInto(state, *p, sidecar("frozen", "a", "a")).violations) ==
        Ids{"namespace-quota-exceeded"});
}

TEST_CASE("cluster-quota-exceeded", "[quota][cluster-quota-exceeded]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  admitInto(state, *p, sidecar("payments", "a", "a"));
  admitInto(state, *p, sidecar("payments", "b", "b"));
  admitInto(state, *p, sidecar("shop", "a", "a"));
  auto d = admitInto(state, *p, sidecar("edge-eu", "a", "a"));
  REQUIRE(ruleIds(d.violations) == Ids{"cluster-quota-exceeded"});
  CHECK(d.violations[0].path == "metadata.name");
  CHECK(d.violations[0].message ==
        "the cluster already has 3 of its 3 hybrid workloads; remove tls from one or raise "
        "spec.maxWorkloads");
}

TEST_CASE("quota rules are not reported with namespace-not-allowed", "[quota]") {
  auto p = policyFrom("  namespaces: [payments]\n  maxWorkloads: 0\n");
  policy::State state;
  CHECK(ruleIds(admitInto(state, *p, sidecar("shop", "a", "a")).violations) ==
        Ids{"namespace-not-allowed"});
}

TEST_CASE("UPDATE of a counted Sidecar does not count twice", "[quota][update]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  json a = sidecar("shop", "a", "a");
  admitInto(state, *p, a);
  json changed = a;
  changed["spec"]["ingress"][0]["port"]["number"] = 9443;
  auto d = admitInto(state, *p, changed, policy::Operation::Update, a);
  CHECK(d.allowed);
  CHECK(d.evaluated);
  CHECK(state.namespaceCount("shop") == 1);
}

TEST_CASE("UPDATE that leaves ingress and selector alone is admitted unevaluated", "[update]") {
  // The policy no longer allows the namespace: the owner can still relabel the object.
  auto strict = policyFrom("  namespaces: []\n");
  policy::State state;
  json a = sidecar("shop", "a", "a");
  test::admit(state, a);
  json relabeled = a;
  relabeled["metadata"]["labels"] = {{"team", "x"}};
  relabeled["metadata"]["finalizers"] = {"example.com/keep"};
  auto d = admitInto(state, *strict, relabeled, policy::Operation::Update, a);
  CHECK(d.allowed);
  CHECK_FALSE(d.evaluated);
  CHECK(d.violations.empty());
  CHECK(state.find("shop", "a") != nullptr);
}

TEST_CASE("UPDATE that adds tls counts", "[quota][update]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  admitInto(state, *p, sidecar("shop", "a", "a"));
  json plain = sidecar("shop", "b", "b");
  plain["spec"]["ingress"][0].erase("tls");
  CHECK(admitInto(state, *p, plain).allowed);
  CHECK(state.namespaceCount("shop") == 1);
  auto d = admitInto(state, *p, sidecar("shop", "b", "b"), policy::Operation::Update, plain);
  CHECK(ruleIds(d.violations) == Ids{"namespace-quota-exceeded"});
}

TEST_CASE("UPDATE that removes tls releases the slot", "[quota][update]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  json a = sidecar("shop", "a", "a");
  admitInto(state, *p, a);
  json plain = a;
  plain["spec"]["ingress"][0].erase("tls");
  auto d = admitInto(state, *p, plain, policy::Operation::Update, a);
  CHECK(d.allowed);
  CHECK(d.change.kind == Kind::Remove);
  CHECK(state.namespaceCount("shop") == 0);
  CHECK(admitInto(state, *p, sidecar("shop", "b", "b")).allowed);
}

TEST_CASE("DELETE is always allowed and releases the count", "[quota][delete]") {
  auto p = policyFrom("  namespaces: []\n");  // even a policy that allows nothing
  policy::State state;
  json a = sidecar("shop", "a", "a");
  test::admit(state, a);
  auto d = admitInto(state, *p, json(), policy::Operation::Delete, a);
  CHECK(d.allowed);
  CHECK(d.change.kind == Kind::Remove);
  CHECK(state.total() == 0);
}

TEST_CASE("dry-run requests are evaluated but never change counts", "[quota][dry-run]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  json a = sidecar("shop", "a", "a");
  auto d = admitInto(state, *p, a, policy::Operation::Create, nullptr, true);
  CHECK(d.allowed);
  CHECK(d.change.kind == Kind::None);
  CHECK(state.total() == 0);
  admitInto(state, *p, a);
  auto del = admitInto(state, *p, json(), policy::Operation::Delete, a, true);
  CHECK(del.change.kind == Kind::None);
  CHECK(state.total() == 1);
  auto over =
      admitInto(state, *p, sidecar("shop", "b", "b"), policy::Operation::Create, nullptr, true);
  CHECK(ruleIds(over.violations) == Ids{"namespace-quota-exceeded"});
}

TEST_CASE("warn and dryrun admit over quota and still count", "[quota][enforcement]") {
  for (const char* mode : {"warn", "dryrun"}) {
    auto p = policyFrom(std::string(kPolicy) + "  enforcement: " + mode + "\n");
    policy::State state;
    admitInto(state, *p, sidecar("shop", "a", "a"));
    auto d = admitInto(state, *p, sidecar("shop", "b", "b"));
    CHECK(d.allowed);
    CHECK(ruleIds(d.violations) == Ids{"namespace-quota-exceeded"});
    CHECK(state.namespaceCount("shop") == 2);
  }
}

TEST_CASE("State selects as Istio does", "[state]") {
  policy::State state;
  state.upsert({"ns", "b-generic", std::nullopt, {}});
  state.upsert({"ns", "z-app", policy::Labels{{"app", "api"}}, {}});
  state.upsert({"ns", "m-app-v1", policy::Labels{{"app", "api"}, {"version", "v1"}}, {}});
  state.upsert({"other", "x", policy::Labels{{"app", "api"}}, {}});
  SECTION("a selector wins over none; ties go to the smallest name") {
    auto* s = state.selecting("ns", {{"app", "api"}, {"version", "v1"}});
    REQUIRE(s);
    CHECK(s->name == "m-app-v1");
    s = state.selecting("ns", {{"app", "api"}});
    REQUIRE(s);
    CHECK(s->name == "z-app");
  }
  SECTION("without a selector it selects every pod of its namespace only") {
    auto* s = state.selecting("ns", {{"app", "web"}});
    REQUIRE(s);
    CHECK(s->name == "b-generic");
    CHECK(state.selecting("third", {{"app", "api"}}) == nullptr);
  }
  SECTION("counts") {
    CHECK(state.total() == 4);
    CHECK(state.namespaceCount("ns") == 3);
    state.upsert({"ns", "z-app", std::nullopt, {}});
    CHECK(state.total() == 4);
    CHECK(state.remove("ns", "z-app"));
    CHECK_FALSE(state.remove("ns", "z-app"));
    CHECK(state.total() == 3);
  }
}

TEST_CASE("reservations count toward quotas but select nothing (DESIGN §8)", "[quota][state]") {
  auto p = policyFrom(kPolicy);
  policy::State state;
  admitInto(state, *p, sidecar("payments", "a", "a"));
  state.reserve("payments", "b");
  state.reserve("payments", "b");  // one slot, however often reserved
  state.reserve("payments", "a");  // stored already: no second slot
  CHECK(state.namespaceCount("payments") == 2);
  CHECK(state.total() == 2);
  CHECK(state.counts("payments", "b"));
  CHECK_FALSE(state.find("payments", "b"));
  CHECK(state.selecting("payments", {{"app", "b"}}) == nullptr);

  auto d = admitInto(state, *p, sidecar("payments", "c", "c"));
  REQUIRE(ruleIds(d.violations) == Ids{"namespace-quota-exceeded"});
  CHECK(d.violations[0].message ==
        "namespace \"payments\" already has 2 of its 2 hybrid workloads (a, b (reserved)); remove "
        "tls from one of them or raise maxWorkloads for the namespace");
  // The reserved object itself arriving (a retried CREATE) holds its slot already.
  CHECK(admitInto(state, *p, sidecar("payments", "b", "b")).allowed);
  CHECK(state.namespaceCount("payments") == 2);  // the upsert took the reservation over
  CHECK(state.reservedIn("payments") == nullptr);

  state.reserve("shop", "x");
  CHECK(ruleIds(admitInto(state, *p, sidecar("edge-eu", "a", "a")).violations) ==
        Ids{"cluster-quota-exceeded"});
}
