// A response as handlers build it. The server adds the headers every response carries (CORS,
// CORP, Date, Content-Length, Connection) and streams the body: a file range goes out with
// sendfile(2), never through a user-space buffer.
#pragma once

#include "core/growing_file.hpp"
#include "core/matrix_error.hpp"
#include "core/unique_fd.hpp"

#include <boost/beast/http/status.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace mxcd::http {

namespace beast_http = boost::beast::http;

// Bytes [offset, offset + length) of an open file. When the file is still being written
// (growing is set), the server sends bytes as they become readable.
struct FileBody {
  UniqueFd fd;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::shared_ptr<GrowingFile> growing;
};

// The answer to a HEAD request: the length a GET would send, without opening anything.
struct HeadBody {
  std::uint64_t length = 0;
};

struct Response {
  beast_http::status status = beast_http::status::ok;
  // "Name: value\r\n" lines, appended by set_header(): one buffer instead of a node per field,
  // because every download carries a dozen headers.
  std::string header_lines;
  std::variant<std::monostate, std::string, FileBody, HeadBody> body;

  // Values with a line break (which would split the response) are refused and logged.
  void set_header(std::string_view name, std::string_view value);
  std::uint64_t body_length() const;
};

Response json_response(beast_http::status status, const boost::json::value& body);
Response error_response(const MatrixError& error);

}  // namespace mxcd::http
