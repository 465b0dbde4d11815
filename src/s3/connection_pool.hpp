// Keep-alive connections to one S3 endpoint, plain or TLS (http/tls.hpp), shared by the
// requests of one client. A connection serves only the thread (io_context) that made it, and
// is not offered again after a few idle seconds: servers close idle connections after 5 to
// 60 s, and a request on one they have closed fails.
#pragma once

#include "core/config.hpp"
#include "http/tls.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mxcd::s3 {

// A network failure: no answer, or an answer that broke off. Thrown by the pool and by the
// exchange on a connection; what says what happened, for the log.
struct NetworkFailure {
  std::string what;
};

// One connection to the server, plain or TLS, kept open between requests.
struct Connection {
  std::unique_ptr<boost::beast::tcp_stream> plain;
  std::unique_ptr<http::TlsStream> tls;
  boost::beast::flat_buffer buffer;
  boost::asio::execution_context* context = nullptr;  // connections serve the thread that made them
  std::chrono::steady_clock::time_point idle_since;
  bool reused = false;  // taken from the pool rather than newly connected

  boost::beast::tcp_stream& lowest() { return tls ? boost::beast::get_lowest_layer(*tls) : *plain; }
};

class ConnectionPool {
 public:
  // Throws std::runtime_error when ca_file cannot be loaded.
  ConnectionPool(std::string host, std::string port, bool tls, const std::filesystem::path& ca_file,
                 Duration connect_timeout);

  // An idle connection made on the calling coroutine's thread, or a new one (resolving,
  // connecting and the TLS handshake within the connect timeout). Throws NetworkFailure.
  boost::asio::awaitable<std::unique_ptr<Connection>> acquire();
  // Offers the connection to later requests; one the server may keep using.
  void release(std::unique_ptr<Connection> connection);

 private:
  boost::asio::awaitable<std::unique_ptr<Connection>> connect();

  const std::string host_;
  const std::string port_;
  const bool tls_;
  const Duration connect_timeout_;
  http::TlsConnector connector_;

  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace mxcd::s3
