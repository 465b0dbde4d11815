#include "http/byte_range.hpp"

#include <charconv>
#include <limits>
#include <optional>

namespace mxcd::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A run of decimal digits. One too large for 64 bits saturates: it still names a position
// past the end of any file, which the range rules below handle.
std::optional<std::uint64_t> parse_number(std::string_view s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) return std::numeric_limits<std::uint64_t>::max();
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

RangeRequest parse_range(std::string_view header, std::uint64_t size) {
  using Kind = RangeRequest::Kind;
  header = trim(header);
  constexpr std::string_view unit = "bytes=";
  if (header.size() < unit.size()) return {};
  for (std::size_t i = 0; i < unit.size(); ++i) {
    if ((header[i] | 0x20) != unit[i] && header[i] != unit[i]) return {};
  }
  std::string_view spec = trim(header.substr(unit.size()));
  if (spec.find(',') != std::string_view::npos) return {};
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  std::string_view first_text = trim(spec.substr(0, dash));
  std::string_view last_text = trim(spec.substr(dash + 1));

  if (first_text.empty()) {  // suffix range: the last n bytes
    auto n = parse_number(last_text);
    if (!n) return {};
    if (*n == 0 || size == 0) return {Kind::unsatisfiable};
    std::uint64_t length = *n < size ? *n : size;
    return {Kind::partial, size - length, size - 1};
  }
  auto first = parse_number(first_text);
  if (!first) return {};
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!last_text.empty()) {
    auto parsed = parse_number(last_text);
    if (!parsed || *parsed < *first) return {};
    if (*parsed < last) last = *parsed;
  }
  if (*first >= size) return {Kind::unsatisfiable};
  return {Kind::partial, *first, last};
}

}  // namespace mxcd::http
