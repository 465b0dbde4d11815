// An inclusive range of byte offsets, as HTTP Range headers count them.
#pragma once

#include <cstdint>

namespace mxcd {

struct ByteSpan {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t length() const { return last - first + 1; }
};

}  // namespace mxcd
