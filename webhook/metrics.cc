#include "webhook/metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace hybrid_guard::webhook {
namespace {

constexpr std::array<double, 15> kLatencyBuckets = {0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                                    0.001,    0.0025,  0.005,  0.01,    0.025,
                                                    0.05,     0.1,     0.25,   0.5,     1.0};

[[noreturn]] void misuse(const std::string& message) {
  std::fprintf(stderr, "metrics registry misuse: %s\n", message.c_str());
  std::abort();
}

bool isValidName(std::string_view name, bool allowColon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allowColon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

template <typename A, typename B>
bool lexicographicallyLess(const A& a, const B& b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](std::string_view x, std::string_view y) { return x < y; });
}

void appendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view extraName = {},
                  std::string_view extraValue = {}) {
  if (names.empty() && extraName.empty()) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    out += escapeLabelValue(values[i]);
    out += '"';
  }
  if (!extraName.empty()) {
    if (!names.empty()) out += ',';
    out += extraName;
    out += "=\"";
    out += extraValue;
    out += '"';
  }
  out += '}';
}

void appendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const std::vector<std::string>& labelNames,
                  const std::vector<std::string>& labelValues, std::string_view value,
                  std::string_view extraName = {}, std::string_view extraValue = {}) {
  out += name;
  out += suffix;
  appendLabels(out, labelNames, labelValues, extraName, extraValue);
  out += ' ';
  out += value;
  out += '\n';
}

template <typename Metric>
constexpr const char* typeName() {
  if constexpr (std::is_same_v<Metric, Counter>) {
    return "counter";
  } else if constexpr (std::is_same_v<Metric, Gauge>) {
    return "gauge";
  } else {
    static_assert(std::is_same_v<Metric, Histogram>);
    return "histogram";
  }
}

}  // namespace

std::span<const double> defaultLatencyBuckets() {
  return kLatencyBuckets;
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string escapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string formatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  std::array<char, 32> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (ec != std::errc()) return "NaN";
  return std::string(buffer.data(), end);
}

Histogram::Histogram(std::span<const double> upperBounds)
    : upperBounds_(upperBounds),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(upperBounds.size() + 1)) {}

void Histogram::observe(double value) {
  if (std::isnan(value)) return;
  // Bucket i counts values <= upperBounds_[i]; the last one counts the rest (+Inf).
  auto index = static_cast<std::size_t>(
      std::lower_bound(upperBounds_.begin(), upperBounds_.end(), value) - upperBounds_.begin());
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot;
  snapshot.cumulativeCounts.reserve(upperBounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= upperBounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulativeCounts.push_back(running);
  }
  // Derived from the buckets so that _count always equals the +Inf bucket.
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

template <typename Metric>
bool MetricFamily<Metric>::LabelValuesLess::operator()(const std::vector<std::string>& a,
                                                       const std::vector<std::string>& b) const {
  return lexicographicallyLess(a, b);
}

template <typename Metric>
bool MetricFamily<Metric>::LabelValuesLess::operator()(const std::vector<std::string>& a,
                                                       std::span<const std::string_view> b) const {
  return lexicographicallyLess(a, b);
}

template <typename Metric>
bool MetricFamily<Metric>::LabelValuesLess::operator()(std::span<const std::string_view> a,
                                                       const std::vector<std::string>& b) const {
  return lexicographicallyLess(a, b);
}

template <typename Metric>
MetricFamily<Metric>::MetricFamily(std::string name, std::string help,
                                   std::vector<std::string> labelNames,
                                   std::vector<double> upperBounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      labelNames_(std::move(labelNames)),
      upperBounds_(std::move(upperBounds)) {
  if (!isValidName(name_, true)) misuse("invalid metric name '" + name_ + "'");
  for (const auto& label : labelNames_) {
    if (!isValidName(label, false) || label.starts_with("__")) {
      misuse("invalid label name '" + label + "' in " + name_);
    }
    if (std::is_same_v<Metric, Histogram> && label == "le") {
      misuse("histogram " + name_ + " cannot have a label named le");
    }
  }
  if constexpr (std::is_same_v<Metric, Histogram>) {
    if (upperBounds_.empty()) misuse("histogram " + name_ + " needs buckets");
    for (std::size_t i = 0; i < upperBounds_.size(); ++i) {
      if (!std::isfinite(upperBounds_[i]) || (i > 0 && upperBounds_[i] <= upperBounds_[i - 1])) {
        misuse("histogram " + name_ + " buckets must be finite and strictly increasing");
      }
    }
  }
  // A family without labels has exactly one series: export it from the start.
  if (labelNames_.empty()) labels({});
}

template <typename Metric>
Metric& MetricFamily<Metric>::labels(std::span<const std::string_view> values) {
  if (values.size() != labelNames_.size()) {
    misuse(name_ + " takes " + std::to_string(labelNames_.size()) + " label values, got " +
           std::to_string(values.size()));
  }
  std::lock_guard lock(mutex_);
  if (auto it = series_.find(values); it != series_.end()) return *it->second;
  std::unique_ptr<Metric> metric;
  if constexpr (std::is_same_v<Metric, Histogram>) {
    metric = std::make_unique<Histogram>(upperBounds_);
  } else {
    metric = std::make_unique<Metric>();
  }
  Metric& result = *metric;
  series_.emplace(std::vector<std::string>(values.begin(), values.end()), std::move(metric));
  return result;
}

template <typename Metric>
void MetricFamily<Metric>::render(std::string& out) const {
  out += "# HELP ";
  out += name_;
  out += ' ';
  out += escapeHelp(help_);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += typeName<Metric>();
  out += '\n';
  std::lock_guard lock(mutex_);
  for (const auto& [values, metric] : series_) {
    if constexpr (std::is_same_v<Metric, Counter>) {
      appendSample(out, name_, "", labelNames_, values, std::to_string(metric->value()));
    } else if constexpr (std::is_same_v<Metric, Gauge>) {
      appendSample(out, name_, "", labelNames_, values, formatSampleValue(metric->value()));
    } else {
      Histogram::Snapshot snapshot = metric->snapshot();
      for (std::size_t i = 0; i < snapshot.cumulativeCounts.size(); ++i) {
        std::string bound =
            i < upperBounds_.size() ? formatSampleValue(upperBounds_[i]) : std::string("+Inf");
        appendSample(out, name_, "_bucket", labelNames_, values,
                     std::to_string(snapshot.cumulativeCounts[i]), "le", bound);
      }
      appendSample(out, name_, "_sum", labelNames_, values, formatSampleValue(snapshot.sum));
      appendSample(out, name_, "_count", labelNames_, values, std::to_string(snapshot.count));
    }
  }
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

template <typename Metric>
MetricFamily<Metric>& MetricsRegistry::add(std::string name, std::string help,
                                           std::vector<std::string> labelNames,
                                           std::vector<double> upperBounds) {
  std::lock_guard lock(mutex_);
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
    misuse("metric " + name + " registered twice");
  }
  auto family = std::make_unique<MetricFamily<Metric>>(name, std::move(help), std::move(labelNames),
                                                       std::move(upperBounds));
  MetricFamily<Metric>& result = *family;
  names_.push_back(std::move(name));
  families_.push_back(std::move(family));
  return result;
}

CounterFamily& MetricsRegistry::counter(std::string name, std::string help,
                                        std::vector<std::string> labelNames) {
  return add<Counter>(std::move(name), std::move(help), std::move(labelNames), {});
}

GaugeFamily& MetricsRegistry::gauge(std::string name, std::string help,
                                    std::vector<std::string> labelNames) {
  return add<Gauge>(std::move(name), std::move(help), std::move(labelNames), {});
}

HistogramFamily& MetricsRegistry::histogram(std::string name, std::string help,
                                            std::vector<std::string> labelNames,
                                            std::span<const double> upperBounds) {
  return add<Histogram>(std::move(name), std::move(help), std::move(labelNames),
                        std::vector<double>(upperBounds.begin(), upperBounds.end()));
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& family : families_) family->render(out);
  return out;
}

}  // namespace hybrid_guard::webhook
