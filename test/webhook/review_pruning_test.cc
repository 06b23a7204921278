// The webhook builds only the parts of a review that the codec and the engine read
// (parseJsonKeeping with the codec's schema and policy::objectReads). These tests hold it to the
// promise: for every fixture case and every manifest of the shared corpus, wrapped in reviews as
// the API server sends them (CREATE, UPDATE, DELETE; compact and indented), the pruned review gives
// byte for byte the answer of the whole one, for /validate and /mutate, with the same state change;
// and the pruned tree is a part of the whole tree.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "cli/evaluator.h"
#include "cli/input_reader.h"
#include "policy/decision.h"
#include "policy/policy.h"
#include "test/fixtures/fixture_cases.h"
#include "webhook/admission_codec.h"

using namespace hybrid_guard;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Whether `part` is `whole` with members of objects left out (arrays keep every element).
bool isPartOf(const json& part, const json& whole) {
  if (part.type() != whole.type()) return false;
  if (part.is_object()) {
    for (const auto& [key, value] : part.items()) {
      auto it = whole.find(key);
      if (it == whole.end() || !isPartOf(value, *it)) return false;
    }
    return true;
  }
  if (part.is_array()) {
    if (part.size() != whole.size()) return false;
    for (size_t i = 0; i < part.size(); ++i) {
      if (!isPartOf(part[i], whole[i])) return false;
    }
    return true;
  }
  return part == whole;
}

json groupVersionKind(const json& object) {
  std::string apiVersion = object.value("apiVersion", "");
  std::string group, version = apiVersion;
  if (auto slash = apiVersion.find('/'); slash != std::string::npos) {
    group = apiVersion.substr(0, slash);
    version = apiVersion.substr(slash + 1);
  }
  return {{"group", group}, {"version", version}, {"kind", object.value("kind", "")}};
}

// The reviews the API server would send for `object`: CREATE, UPDATE (old = new) and DELETE.
std::vector<json> reviewsOf(const json& object) {
  if (webhook::isAdmissionReview(object)) return {object};
  if (!object.is_object()) return {};
  const json* metadata =
      object.contains("metadata") && object["metadata"].is_object() ? &object["metadata"] : nullptr;
  std::string ns = metadata ? metadata->value("namespace", "default") : "default";
  std::string name = metadata ? metadata->value("name", "") : "";
  json request = {{"uid", "d6f5c1a4-0000-4000-8000-000000000001"},
                  {"kind", groupVersionKind(object)},
                  {"resource", {{"group", "x"}, {"version", "v1"}, {"resource", "xs"}}},
                  {"namespace", ns},
                  {"name", name},
                  {"userInfo",
                   {{"username", "alice@example.com"},
                    {"uid", "1"},
                    {"groups", {"platform-team", "system:authenticated"}},
                    {"extra", {{"scopes", {"a", "b"}}}}}},
                  {"dryRun", false},
                  {"options", {{"kind", "CreateOptions"}, {"fieldManager", "kubectl"}}}};
  std::vector<json> reviews;
  for (const char* operation : {"CREATE", "UPDATE", "DELETE"}) {
    json r = request;
    r["operation"] = operation;
    if (std::string(operation) != "DELETE") r["object"] = object;
    if (std::string(operation) != "CREATE") r["oldObject"] = object;
    reviews.push_back(
        {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", r}});
  }
  return reviews;
}

// Decodes `text` pruned (as the server does) and whole (as the CLI does) and requires the same
// answers and state changes for both endpoints. Returns the number of reviews compared (0 or 1).
int compare(const std::string& text, const std::string& label, const policy::Policy& policy,
            const policy::State& state) {
  INFO(label);
  webhook::DecodedReview pruned, whole;
  auto prunedError = webhook::decodeAdmissionReview(std::string_view(text), pruned);
  auto wholeError = webhook::decodeAdmissionReview(json::parse(text), whole);
  REQUIRE(prunedError.has_value() == wholeError.has_value());
  if (prunedError) {
    CHECK(prunedError->message == wholeError->message);
    return 0;
  }
  CHECK(isPartOf(pruned.review, whole.review));
  for (auto phase : {policy::Phase::Validate, policy::Phase::Mutate}) {
    bool mutate = phase == policy::Phase::Mutate;
    policy::Decision a = policy::decide(pruned.request, policy, state, phase);
    policy::Decision b = policy::decide(whole.request, policy, state, phase);
    CHECK(webhook::encodeResponseBody(pruned, a, mutate) ==
          webhook::encodeResponseBody(whole, b, mutate));
    CHECK(a.patch == b.patch);
    CHECK(static_cast<int>(a.change.kind) == static_cast<int>(b.change.kind));
    CHECK(a.change.sidecar.namespace_ == b.change.sidecar.namespace_);
    CHECK(a.change.sidecar.name == b.change.sidecar.name);
    CHECK(a.change.sidecar.selector == b.change.sidecar.selector);
    CHECK(a.change.sidecar.certificatePaths == b.change.sidecar.certificatePaths);
  }
  return 1;
}

int compareAll(const json& object, const std::string& source, const policy::Policy& policy,
               const policy::State& state) {
  int compared = 0;
  for (const auto& review : reviewsOf(object)) {
    std::string label = source + " " + review["request"].value("operation", "?");
    compared += compare(review.dump(), label + " compact", policy, state);
    compared += compare(review.dump(2), label + " indented", policy, state);
  }
  return compared;
}

}  // namespace

TEST_CASE("a pruned review answers as the whole review: fixture cases", "[review][pruning]") {
  int compared = 0, cases = 0;
  for (const auto& c : test::fixtureCases()) {
    ++cases;
    std::shared_ptr<const policy::Policy> policy = policy::defaultPolicy();
    if (c.hasPolicy) {
      auto loaded = policy::loadPolicyFile((c.dir / "policy.yaml").string());
      REQUIRE(loaded);
      policy = *loaded;
    }
    policy::State state;
    if (c.hasState) cli::seedState(test::readCaseFile(c, "state.yaml"), "default", state);
    for (const auto& input : test::readCaseFile(c, "input.yaml")) {
      compared += compareAll(input.value, c.name + "/" + input.source, *policy, state);
    }
  }
  CHECK(cases >= 60);
  CHECK(compared >= 400);
}

TEST_CASE("a pruned review answers as the whole review: the shared corpus", "[review][pruning]") {
  auto policy = policy::defaultPolicy();
  policy::State empty;
  int compared = 0, files = 0;
  for (const auto& e : fs::recursive_directory_iterator(test::sharedDir() / "corpus")) {
    if (!e.is_regular_file() || e.path().filename() == "README.md") continue;
    auto objects = cli::readText(test::readFile(e.path()), e.path().string());
    if (!objects) continue;  // the corpus holds a few files that are not manifests
    ++files;
    // The corpus's hybrid Sidecars, admitted first, so that its pods are selected and mutated.
    policy::State state;
    cli::seedState(*objects, "default", state);
    for (const auto& object : *objects) {
      compared += compareAll(object.value, object.source, *policy, empty);
      compared += compareAll(object.value, object.source + " (with its Sidecars)", *policy, state);
    }
  }
  CHECK(files >= 20);
  CHECK(compared >= 1000);
}

TEST_CASE("a pruned review keeps what the engine reads and drops the rest", "[review][pruning]") {
  std::string text = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
    "request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},
      "resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE",
      "namespace":"shop","userInfo":{"username":"bob","uid":"7","groups":["g"]},
      "object":{"apiVersion":"v1","kind":"Pod",
        "metadata":{"name":"p","namespace":"shop","uid":"x","labels":{"app":"a"},
                    "ownerReferences":[{"kind":"ReplicaSet","name":"rs","controller":true}]},
        "spec":{"nodeName":"n1","containers":[
          {"name":"istio-proxy","image":"proxyv2","args":["proxy"],
           "env":[{"name":"A","value":"1","other":2},
                  {"name":"B","valueFrom":{"fieldRef":{"fieldPath":"x"}}}],
           "volumeMounts":[{"name":"v","mountPath":"/etc/certs"}]}],
          "volumes":[{"name":"v","emptyDir":{}}]},
        "status":{"phase":"Pending"}}}})";
  webhook::DecodedReview review;
  REQUIRE_FALSE(webhook::decodeAdmissionReview(std::string_view(text), review));
  CHECK(review.review.dump() ==
        R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{)"
        R"("kind":{"group":"","kind":"Pod","version":"v1"},"namespace":"shop",)"
        R"("object":{"metadata":{"labels":{"app":"a"},"name":"p","namespace":"shop",)"
        R"("ownerReferences":[{"controller":true}],"uid":"x"},"spec":{"containers":[{"env":[)"
        R"({"name":"A","value":"1"},{"name":"B","valueFrom":{}}],"name":"istio-proxy",)"
        R"("volumeMounts":[{"mountPath":"/etc/certs","name":"v"}]}]}},"operation":"CREATE",)"
        R"("uid":"u1","userInfo":{"groups":["g"],"username":"bob"}}})");
  CHECK(review.request.user.username == "bob");
  CHECK(review.request.object->at("metadata").at("name") == "p");
  // The quota ledger records the object's uid with a reservation (delete and recreate).
  CHECK(review.request.object->at("metadata").at("uid") == "x");
}

TEST_CASE("a pruned review refuses what the whole review refuses, with the same error",
          "[review][pruning]") {
  // Each flaw sits in a part the engine does not read, so the pruned reader skips it.
  const std::string head =
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",)"
      R"("request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},)"
      R"("operation":"CREATE","object":{"metadata":{"name":"p"},)";
  struct Flaw {
    const char* what;
    std::string body;
  };
  std::vector<Flaw> flaws = {
      {"a duplicate key", head + R"("status":{"a":1,"a":2}}}})"},
      {"a duplicate key among many",
       [&] {
         std::string members;
         for (int i = 0; i < 40; ++i) members += "\"k" + std::to_string(i) + "\":1,";
         return head + R"("status":{)" + members + R"("k7":2}}}})";
       }()},
      {"a duplicate key beside a kept one", head + R"("spec":{"nodeName":"a","nodeName":"b"}}}})"},
      {"a bad literal", head + R"("status":{"a":tru}}}})"},
      {"a bad number", head + R"("status":{"a":01}}}})"},
      {"invalid UTF-8 in a string", head + "\"status\":{\"a\":\"\xC3\x28\"}}}}"},
      {"a byte above 0xF4 in a string", head + "\"status\":{\"a\":\"\xF8\x80\x80\"}}}}"},
      {"a byte 0xFF in a kept string", head + "\"spec\":{\"hostNetwork\":\"\xFF\x80\x80\"}}}}"},
      {"a raw control character in a string", head + "\"status\":{\"a\":\"x\x01y\"}}}}"},
      {"a bad escape", head + R"("status":{"a":"\q"}}}})"},
      {"a lone surrogate escape", head + R"("status":{"a":"\udc00"}}}})"},
      {"a missing comma", head + R"("status":{"a":1 "b":2}}}})"},
      {"an unclosed array", head + R"("status":{"a":[1,2}}}})"},
      {"a trailing comma", head + R"("status":{"a":1,}}}})"},
      {"text after the document", head + R"("status":{}}}} x)"},
      {"a truncated body", head + R"("status":{"a":")"},
      {"nesting past the depth limit",
       head + R"("status":)" + std::string(300, '[') + std::string(300, ']') + "}}}"},
  };
  for (const auto& flaw : flaws) {
    INFO(flaw.what);
    webhook::DecodedReview pruned;
    auto error = webhook::decodeAdmissionReview(std::string_view(flaw.body), pruned);
    REQUIRE(error);
    auto whole = policy::parseDocuments(flaw.body);
    REQUIRE_FALSE(whole);
    CHECK(error->message == "malformed JSON: " + whole.error().message);
  }
}

TEST_CASE("parseJsonKeeping refuses text that is not one JSON document", "[review][pruning]") {
  auto schema = policy::KeepSchema::all();
  for (const char* text : {"", "  \n", "a: 1\n---\nb: 2\n"}) {
    INFO(text);
    auto read = policy::parseJsonKeeping(text, schema);
    REQUIRE_FALSE(read.ok());
    CHECK_THAT(read.error().message, Catch::StartsWith("expected one JSON document, found "));
  }
}

TEST_CASE("a pruned review keeps whole a value of another shape than the engine expects",
          "[review][pruning]") {
  // containers as a map and an env entry as a string: the engine reports them, so the pruned
  // reader must not drop what it would report on.
  std::string text = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
    "request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE",
      "object":{"metadata":{"name":"p","labels":["not","a","map"]},
        "spec":{"containers":{"name":"istio-proxy","image":"i"},
                "initContainers":[{"name":"istio-proxy","env":["x",{"name":"A","junk":1}]}]}}}})";
  webhook::DecodedReview review;
  REQUIRE_FALSE(webhook::decodeAdmissionReview(std::string_view(text), review));
  const json& object = *review.request.object;
  CHECK(object["metadata"]["labels"] == json::array({"not", "a", "map"}));
  CHECK(object["spec"]["containers"] == json({{"name", "istio-proxy"}, {"image", "i"}}));
  CHECK(object["spec"]["initContainers"][0]["env"] == json::array({"x", {{"name", "A"}}}));
}
