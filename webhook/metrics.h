#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hybrid_guard::webhook {

// A small Prometheus registry rendering the text exposition format 0.0.4.
//
// Hot paths look a series up once (e.g. at startup) and keep the reference: updating it is one
// relaxed atomic operation, no lock, no allocation. Series are never removed, so references stay
// valid for the registry's lifetime. Misuse (bad names, wrong label count, duplicate metric) is a
// programming error and aborts with a message.

class Counter {
 public:
  void inc(std::uint64_t amount = 1) { value_.fetch_add(amount, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `upperBounds` strictly increasing and finite; it must outlive the histogram.
  explicit Histogram(std::span<const double> upperBounds);

  void observe(double value);  // NaN is ignored
  void observe(std::chrono::steady_clock::duration elapsed) {
    observe(std::chrono::duration<double>(elapsed).count());
  }

  struct Snapshot {
    std::vector<std::uint64_t> cumulativeCounts;  // one per upper bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::span<const double> upperBounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0.0};
};

// 25 µs to 1 s, in seconds: from an in-memory decision up to the webhook timeout.
std::span<const double> defaultLatencyBuckets();

class MetricFamilyBase {
 public:
  virtual ~MetricFamilyBase() = default;
  virtual void render(std::string& out) const = 0;
};

template <typename Metric>
class MetricFamily final : public MetricFamilyBase {
 public:
  MetricFamily(std::string name, std::string help, std::vector<std::string> labelNames,
               std::vector<double> upperBounds);

  // The series with these label values (one per label name, in order), created at 0 on first use
  // so that it is exported from then on. Does not allocate when the series exists.
  Metric& labels(std::initializer_list<std::string_view> values) {
    return labels(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Metric& labels(std::span<const std::string_view> values);

  void render(std::string& out) const override;

 private:
  struct LabelValuesLess {
    using is_transparent = void;
    bool operator()(const std::vector<std::string>& a, const std::vector<std::string>& b) const;
    bool operator()(const std::vector<std::string>& a, std::span<const std::string_view> b) const;
    bool operator()(std::span<const std::string_view> a, const std::vector<std::string>& b) const;
  };

  std::string name_;
  std::string help_;
  std::vector<std::string> labelNames_;
  std::vector<double> upperBounds_;  // histograms only
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>, LabelValuesLess> series_;
};

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

class MetricsRegistry {
 public:
  CounterFamily& counter(std::string name, std::string help,
                         std::vector<std::string> labelNames = {});
  GaugeFamily& gauge(std::string name, std::string help, std::vector<std::string> labelNames = {});
  HistogramFamily& histogram(std::string name, std::string help,
                             std::vector<std::string> labelNames = {},
                             std::span<const double> upperBounds = defaultLatencyBuckets());

  // Every family in registration order, series sorted by label values.
  std::string render() const;

 private:
  template <typename Metric>
  MetricFamily<Metric>& add(std::string name, std::string help, std::vector<std::string> labelNames,
                            std::vector<double> upperBounds);

  mutable std::mutex mutex_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<MetricFamilyBase>> families_;
};

// Text format escaping: label values escape backslash, double quote and newline; HELP text
// escapes backslash and newline.
std::string escapeLabelValue(std::string_view value);
std::string escapeHelp(std::string_view help);
// Shortest round-trip form; NaN, +Inf and -Inf as Prometheus spells them.
std::string formatSampleValue(double value);

}  // namespace hybrid_guard::webhook
