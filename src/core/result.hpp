// Result<T>: either a value or a MatrixError. Errors cross module boundaries as values.
#pragma once

#include "core/matrix_error.hpp"

#include <utility>
#include <variant>

namespace mxcd {

template <class T = void>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(MatrixError error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const MatrixError& error() const& { return std::get<1>(v_); }
  MatrixError&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, MatrixError> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(MatrixError error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const MatrixError& error() const& { return error_; }
  MatrixError&& error() && { return std::move(error_); }

 private:
  MatrixError error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace mxcd
