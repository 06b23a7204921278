#include "webhook/metrics.h"

#include <cmath>
#include <regex>
#include <sstream>
#include <thread>

#include "catch2/catch.hpp"

using namespace hybrid_guard::webhook;

namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;
  std::map<std::string, std::string> help;
  std::vector<Sample> samples;

  std::vector<Sample> find(const std::string& name,
                           const std::map<std::string, std::string>& labels = {}) const {
    std::vector<Sample> out;
    for (const auto& sample : samples) {
      if (sample.name != name) continue;
      bool matches = true;
      for (const auto& [key, value] : labels) {
        auto it = sample.labels.find(key);
        matches = matches && it != sample.labels.end() && it->second == value;
      }
      if (matches) out.push_back(sample);
    }
    return out;
  }
  double value(const std::string& name,
               const std::map<std::string, std::string>& labels = {}) const {
    auto found = find(name, labels);
    REQUIRE(found.size() == 1);
    return found.front().value;
  }
};

// A strict reader of text format 0.0.4: HELP then TYPE before a family's samples, sample names
// belonging to the family, label values with only the three legal escapes.
Exposition parseExposition(const std::string& text) {
  static const std::regex sampleLine(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$)");
  static const std::regex labelPair(
      R"re(^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$))re");
  Exposition out;
  std::string family;
  std::istringstream lines(text);
  std::string line;
  REQUIRE((text.empty() || text.back() == '\n'));
  while (std::getline(lines, line)) {
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0) {
      std::string rest = line.substr(7);
      family = rest.substr(0, rest.find(' '));
      REQUIRE(out.help.count(family) == 0);
      out.help[family] = rest.substr(family.size() + 1);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      REQUIRE(rest.substr(0, rest.find(' ')) == family);
      out.types[family] = rest.substr(family.size() + 1);
      continue;
    }
    std::smatch match;
    REQUIRE(std::regex_match(line, match, sampleLine));
    Sample sample;
    sample.name = match[1];
    REQUIRE(out.types.count(family) == 1);
    if (out.types[family] == "histogram") {
      REQUIRE((sample.name == family + "_bucket" || sample.name == family + "_sum" ||
               sample.name == family + "_count"));
    } else {
      REQUIRE(sample.name == family);
    }
    std::string labels = match[3];
    while (!labels.empty()) {
      std::smatch pair;
      REQUIRE(std::regex_search(labels, pair, labelPair));
      std::string raw = pair[2], value;
      for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\\') {
          ++i;
          value += raw[i] == 'n' ? '\n' : raw[i];
        } else {
          value += raw[i];
        }
      }
      sample.labels[pair[1]] = value;
      labels = pair.suffix();
    }
    std::string value = match[4];
    sample.value = value == "+Inf" ? INFINITY : value == "-Inf" ? -INFINITY : std::stod(value);
    out.samples.push_back(sample);
  }
  return out;
}

}  // namespace

TEST_CASE("pre-declared series are exported at zero from the start", "[metrics]") {
  MetricsRegistry registry;
  auto& requests = registry.counter("hybrid_guard_admission_requests_total",
                                    "Admission requests answered.", {"endpoint", "decision"});
  for (auto endpoint : {"validate", "mutate"}) {
    for (auto decision : {"allow", "deny"}) requests.labels({endpoint, decision});
  }
  registry.gauge("hybrid_guard_certificate_expiry_timestamp_seconds", "notAfter of the cert.");
  registry.histogram("hybrid_guard_admission_duration_seconds", "Time to decide.", {"endpoint"})
      .labels({"validate"});
  registry.counter("hybrid_guard_rule_violations_total", "Violations.", {"rule"});

  Exposition parsed = parseExposition(registry.render());
  CHECK(parsed.types["hybrid_guard_admission_requests_total"] == "counter");
  CHECK(parsed.types["hybrid_guard_certificate_expiry_timestamp_seconds"] == "gauge");
  CHECK(parsed.types["hybrid_guard_admission_duration_seconds"] == "histogram");
  CHECK(parsed.types["hybrid_guard_rule_violations_total"] == "counter");  // no series yet
  CHECK(parsed.help["hybrid_guard_admission_requests_total"] == "Admission requests answered.");
  CHECK(parsed.find("hybrid_guard_admission_requests_total").size() == 4);
  CHECK(parsed.value("hybrid_guard_admission_requests_total",
                     {{"endpoint", "mutate"}, {"decision", "deny"}}) == 0);
  CHECK(parsed.value("hybrid_guard_certificate_expiry_timestamp_seconds") == 0);
  CHECK(parsed.value("hybrid_guard_admission_duration_seconds_count", {{"endpoint", "validate"}}) ==
        0);
  CHECK(parsed.find("hybrid_guard_admission_duration_seconds_bucket").size() == 16);
}

TEST_CASE("counters and gauges render their values", "[metrics]") {
  MetricsRegistry registry;
  auto& reloads = registry.counter("reloads_total", "Reloads.", {"result"});
  Counter& success = reloads.labels({"success"});
  Counter& failure = reloads.labels({"failure"});
  success.inc();
  success.inc(2);
  failure.inc();
  Gauge& expiry = registry.gauge("expiry_seconds", "Expiry.").labels({});
  expiry.set(1767225600);
  Gauge& workloads = registry.gauge("workloads", "Hybrid workloads.", {"namespace"}).labels({"a"});
  workloads.add(2.5);
  workloads.add(-1);

  CHECK(&reloads.labels({"success"}) == &success);  // same series, same object
  Exposition parsed = parseExposition(registry.render());
  CHECK(parsed.value("reloads_total", {{"result", "success"}}) == 3);
  CHECK(parsed.value("reloads_total", {{"result", "failure"}}) == 1);
  CHECK(parsed.value("expiry_seconds") == 1767225600);
  CHECK(parsed.value("workloads", {{"namespace", "a"}}) == 1.5);
}

TEST_CASE("histograms have cumulative buckets ending in +Inf", "[metrics]") {
  MetricsRegistry registry;
  const std::vector<double> bounds = {0.001, 0.01, 0.1};
  Histogram& latency =
      registry.histogram("latency_seconds", "Latency.", {"endpoint"}, bounds).labels({"validate"});
  for (double value : {0.0005, 0.001, 0.002, 0.05, 0.05, 3.0}) latency.observe(value);
  latency.observe(std::nan(""));
  latency.observe(std::chrono::steady_clock::duration(std::chrono::microseconds(20)));

  Exposition parsed = parseExposition(registry.render());
  auto bucket = [&](const std::string& le) {
    return parsed.value("latency_seconds_bucket", {{"endpoint", "validate"}, {"le", le}});
  };
  CHECK(bucket("0.001") == 3);  // 0.0005, 0.001 (an upper bound is inclusive), 20 µs
  CHECK(bucket("0.01") == 4);
  CHECK(bucket("0.1") == 6);
  CHECK(bucket("+Inf") == 7);
  CHECK(parsed.value("latency_seconds_count", {{"endpoint", "validate"}}) == 7);
  CHECK(parsed.value("latency_seconds_sum", {{"endpoint", "validate"}}) ==
        Approx(0.0005 + 0.001 + 0.002 + 0.05 + 0.05 + 3.0 + 0.00002));

  auto buckets = parsed.find("latency_seconds_bucket");
  REQUIRE(buckets.size() == 4);
  for (std::size_t i = 1; i < buckets.size(); ++i) CHECK(buckets[i].value >= buckets[i - 1].value);
  CHECK(buckets.back().labels.at("le") == "+Inf");
}

TEST_CASE("the default latency buckets span 25 microseconds to one second", "[metrics]") {
  auto bounds = defaultLatencyBuckets();
  REQUIRE(bounds.size() >= 10);
  CHECK(bounds.front() == 0.000025);
  CHECK(bounds.back() == 1.0);
  CHECK(std::is_sorted(bounds.begin(), bounds.end()));
  MetricsRegistry registry;
  registry.histogram("d_seconds", "D.").labels({}).observe(0.000025);
  Exposition parsed = parseExposition(registry.render());
  CHECK(parsed.value("d_seconds_bucket", {{"le", "2.5e-05"}}) == 1);
}

TEST_CASE("label values and help text are escaped", "[metrics]") {
  MetricsRegistry registry;
  auto& violations =
      registry.counter("violations_total", "Rule \\ violations\nper rule.", {"rule"});
  const std::string nasty = "a\"b\\c\nd";
  violations.labels({nasty}).inc();
  std::string text = registry.render();
  CHECK_THAT(text, Catch::Contains("# HELP violations_total Rule \\\\ violations\\nper rule.\n"));
  CHECK_THAT(text, Catch::Contains("violations_total{rule=\"a\\\"b\\\\c\\nd\"} 1\n"));
  Exposition parsed = parseExposition(text);
  CHECK(parsed.value("violations_total", {{"rule", nasty}}) == 1);
}

TEST_CASE("sample values use Prometheus spellings", "[metrics]") {
  CHECK(formatSampleValue(0) == "0");
  CHECK(formatSampleValue(1.5) == "1.5");
  CHECK(formatSampleValue(INFINITY) == "+Inf");
  CHECK(formatSampleValue(-INFINITY) == "-Inf");
  CHECK(formatSampleValue(std::nan("")) == "NaN");
  CHECK(std::stod(formatSampleValue(1767225600.0)) == 1767225600.0);
}

TEST_CASE("concurrent updates are all counted", "[metrics]") {
  MetricsRegistry registry;
  auto& family = registry.counter("hits_total", "Hits.", {"worker"});
  Histogram& latency = registry.histogram("h_seconds", "H.").labels({});
  Counter& shared = family.labels({"shared"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Counter& own = family.labels({std::to_string(t)});
      for (int i = 0; i < 10000; ++i) {
        shared.inc();
        own.inc();
        latency.observe(0.001);
      }
    });
  }
  std::string renderedMeanwhile;
  std::thread renderer([&] {
    for (int i = 0; i < 20; ++i) renderedMeanwhile = registry.render();
  });
  for (auto& thread : threads) thread.join();
  renderer.join();
  parseExposition(renderedMeanwhile);
  Exposition parsed = parseExposition(registry.render());
  CHECK(parsed.value("hits_total", {{"worker", "shared"}}) == 80000);
  CHECK(parsed.value("hits_total", {{"worker", "7"}}) == 10000);
  CHECK(parsed.value("h_seconds_count") == 80000);
  CHECK(parsed.value("h_seconds_sum") == Approx(80.0));
}
