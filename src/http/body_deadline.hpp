// When reading a request body must have finished, or have made more progress. A small
// (buffered) body must be complete within body_timeout of its start. A streamed body may be
// large and so has no whole-body deadline; instead, once body_timeout has passed, the bytes
// received must keep up with min_rate bytes per second since the start.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace mxcd::http {

// The latest instant by which more than `received` bytes must have arrived.
inline std::chrono::steady_clock::time_point body_deadline(
    std::chrono::steady_clock::time_point start, std::uint64_t received, bool streamed,
    std::chrono::steady_clock::duration body_timeout, std::uint64_t min_rate) {
  using std::chrono::steady_clock;
  if (!streamed) return start + body_timeout;
  if (min_rate == 0) return steady_clock::time_point::max();
  // received / min_rate seconds of credit, in the clock's ticks (without overflow for any
  // realistic body size).
  const auto credit = std::chrono::duration_cast<steady_clock::duration>(
      std::chrono::duration<double>(static_cast<double>(received) / static_cast<double>(min_rate)));
  return start + std::max(body_timeout, credit);
}

}  // namespace mxcd::http
