// The Range request header (RFC 9110 §14), single range only. Several ranges, or a header we
// cannot parse, are ignored: the whole representation is served, as the RFC allows.
#pragma once

#include <cstdint>
#include <string_view>

namespace mxcd::http {

struct RangeRequest {
  enum class Kind { whole, partial, unsatisfiable } kind = Kind::whole;
  std::uint64_t first = 0;  // inclusive
  std::uint64_t last = 0;   // inclusive
};

RangeRequest parse_range(std::string_view header, std::uint64_t size);

}  // namespace mxcd::http
