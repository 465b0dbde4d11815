// A stream of bytes read piece by piece, such as a request body arriving from the network.
// Pipelines consume request bodies through this interface, never as a whole.
#pragma once

#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace mxcd {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // The announced length, when the sender announced one (absent for chunked bodies).
  virtual std::optional<std::uint64_t> announced_length() const = 0;
  // Reads up to buffer.size() bytes; 0 means the stream is complete. An error means the
  // stream broke off (the peer went away, stalled, or sent malformed framing).
  virtual boost::asio::awaitable<Result<std::size_t>> read_some(
      boost::asio::mutable_buffer buffer) = 0;
};

}  // namespace mxcd
