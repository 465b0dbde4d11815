// A small outbound HTTP/1.1 client for JSON exchanges with the homeserver (whoami). One
// connection per request; one deadline covers resolving, connecting, the TLS handshake,
// writing and reading. https:// URLs are verified as every outbound TLS connection is
// (http/tls.hpp): the system's CA store plus an optional extra CA file, host name included.
#pragma once

#include "core/config.hpp"
#include "core/result.hpp"
#include "http/tls.hpp"

#include <boost/asio/awaitable.hpp>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace mxcd::http {

struct ClientResponse {
  unsigned status = 0;
  std::string body;
};

class Client {
 public:
  // Throws std::runtime_error when ca_file cannot be loaded.
  explicit Client(const std::filesystem::path& ca_file = {});

  // GET an http:// or https:// URL. Fails (as a 502 MatrixError saying why) when the server
  // cannot be reached or verified, times out, or sends a body over max_body bytes.
  boost::asio::awaitable<Result<ClientResponse>> get(
      const std::string& url, const std::vector<std::pair<std::string, std::string>>& headers,
      Duration timeout, std::size_t max_body = 1024 * 1024);

 private:
  TlsConnector tls_;
};

}  // namespace mxcd::http
