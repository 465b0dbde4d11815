// Feeds arbitrary bytes to Beast's request parser as the server configures it (head limit,
// no body limit, buffer_body), then to check_request_head, then reads the body through the
// chunked or Content-Length framing. Nothing may crash, leak or trip a sanitizer.
#include "http/request_head.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace beast_http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  beast_http::request_parser<beast_http::buffer_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(boost::none);
  std::array<char, 512> body{};
  boost::beast::error_code ec;
  std::size_t offset = 0;
  bool checked = false;
  while (offset < size && !ec && !parser.is_done()) {
    parser.get().body().data = body.data();
    parser.get().body().size = body.size();
    // Pieces of 1 to 64 bytes, as from a slow client; the whole rest when the parser needs
    // more than a piece to make progress.
    std::size_t piece = std::min<std::size_t>(size - offset, 1 + data[offset] % 64);
    std::size_t used = parser.put(boost::asio::buffer(data + offset, piece), ec);
    if (used == 0 && ec == beast_http::error::need_more && piece < size - offset) {
      ec = {};
      used = parser.put(boost::asio::buffer(data + offset, size - offset), ec);
    }
    if (ec == beast_http::error::need_buffer) ec = {};
    if (used == 0) break;
    offset += used;
    if (!checked && parser.is_header_done()) {
      checked = true;
      if (mxcd::http::check_request_head(parser.get().version(), parser.get().base())) break;
    }
  }
  return 0;
}
