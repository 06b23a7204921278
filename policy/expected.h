#pragma once

#include <utility>
#include <variant>

namespace hybrid_guard::policy {

// A value or an error, for everything that reads untrusted input (C++20 has no std::expected).
template <typename T, typename E>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : data_(std::in_place_index<0>, std::move(value)) {}
  static Expected failure(E error) { return Expected(std::in_place_index<1>, std::move(error)); }

  bool ok() const { return data_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(data_); }
  const T& value() const { return std::get<0>(data_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const E& error() const { return std::get<1>(data_); }
  E& error() { return std::get<1>(data_); }

 private:
  template <size_t I, typename V>
  Expected(std::in_place_index_t<I> tag, V&& v) : data_(tag, std::forward<V>(v)) {}
  std::variant<T, E> data_;
};

}  // namespace hybrid_guard::policy
