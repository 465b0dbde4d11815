#include "meta/sql/sql_backend.hpp"

#include <charconv>

namespace mxcd::sql {

bool Row::is_null(int column) const {
  return std::holds_alternative<std::monostate>(rows_.cell(row_, column));
}

std::string Row::text(int column) const {
  const Value& v = rows_.cell(row_, column);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* n = std::get_if<std::int64_t>(&v)) return std::to_string(*n);
  return {};
}

std::int64_t Row::integer(int column) const {
  const Value& v = rows_.cell(row_, column);
  if (const auto* n = std::get_if<std::int64_t>(&v)) return *n;
  std::int64_t n = 0;
  if (const auto* s = std::get_if<std::string>(&v))
    std::from_chars(s->data(), s->data() + s->size(), n);
  return n;
}

bool Row::flag(int column) const {
  const Value& v = rows_.cell(row_, column);
  if (const auto* s = std::get_if<std::string>(&v)) return *s == "t" || *s == "true" || *s == "1";
  return integer(column) != 0;
}

std::optional<std::string> Row::optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}

std::optional<std::int64_t> Row::optional_integer(int column) const {
  if (is_null(column)) return std::nullopt;
  return integer(column);
}

}  // namespace mxcd::sql
