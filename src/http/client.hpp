// A minimal outbound HTTP/1.1 client for small JSON exchanges (the homeserver's whoami).
// One connection per request; one deadline covers resolving, connecting, writing and reading.
#pragma once

#include "core/config.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>
#include <utility>
#include <vector>

namespace mxcd::http {

struct ClientResponse {
  unsigned status = 0;
  std::string body;
};

// GET an http:// URL. Fails (as a 502 MatrixError describing why) when the server cannot be
// reached, times out, or sends a body larger than max_body bytes.
boost::asio::awaitable<Result<ClientResponse>> http_get(
    const std::string& url, const std::vector<std::pair<std::string, std::string>>& headers,
    Duration timeout, std::size_t max_body = 1024 * 1024);

}  // namespace mxcd::http
