#pragma once

#include <optional>
#include <string>
#include <utility>

namespace hybrid_guard::webhook {

// Outcome of an operation that can fail on untrusted input (files, peers): errors are values.
class [[nodiscard]] Status {
 public:
  static Status success() { return Status(std::string(), true); }
  static Status failure(std::string message) { return Status(std::move(message), false); }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  Status(std::string error, bool ok) : error_(std::move(error)), ok_(ok) {}

  std::string error_;
  bool ok_;
};

// A value, or the reason there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  static Result success(T value) {
    Result result;
    result.value_.emplace(std::move(value));
    return result;
  }
  static Result failure(std::string message) {
    Result result;
    result.error_ = std::move(message);
    return result;
  }

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return *value_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  const std::string& error() const { return error_; }

 private:
  Result() = default;

  std::optional<T> value_;
  std::string error_;
};

}  // namespace hybrid_guard::webhook
