#include "http/client.hpp"

#include "http/outbound_header.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

namespace mxcd::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;

namespace {

MatrixError failure(const std::string& why) {
  MatrixError e;
  e.status = 502;
  e.message = why;
  return e;
}

// Writes the request and reads the answer on an established (plain or TLS) stream.
template <class Stream>
asio::awaitable<Result<ClientResponse>> exchange(
    Stream& stream, beast_http::request<beast_http::empty_body>& request, std::size_t max_body,
    const std::string& host) {
  boost::system::error_code ec;
  auto use = asio::redirect_error(asio::use_awaitable, ec);
  co_await beast_http::async_write(stream, request, use);
  if (ec) co_return failure("cannot send the request to " + host + ": " + ec.message());
  beast::flat_buffer buffer;
  beast_http::response_parser<beast_http::string_body> parser;
  parser.body_limit(max_body);
  co_await beast_http::async_read(stream, buffer, parser, use);
  if (ec) co_return failure("no valid answer from " + host + ": " + ec.message());
  auto& response = parser.get();
  co_return ClientResponse{static_cast<unsigned>(response.result_int()),
                           std::move(response.body())};
}

}  // namespace

Client::Client(const std::filesystem::path& ca_file) : tls_(ca_file) {}

asio::awaitable<Result<ClientResponse>> Client::get(
    const std::string& url, const std::vector<std::pair<std::string, std::string>>& headers,
    Duration timeout, std::size_t max_body) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  const bool tls = parsed && parsed->scheme() == "https";
  if (!parsed || (!tls && parsed->scheme() != "http") || parsed->host().empty()) {
    co_return failure("not an http(s):// URL: " + url);
  }
  const std::string host = parsed->host_address();
  const std::string port = parsed->has_port() ? std::string(parsed->port()) : tls ? "443" : "80";

  beast_http::request<beast_http::empty_body> request{
      beast_http::verb::get,
      parsed->encoded_target().empty() ? "/" : std::string(parsed->encoded_target()), 11};
  request.set(beast_http::field::host, std::string(parsed->encoded_host_and_port()));
  request.set(beast_http::field::user_agent, "mxcd");
  for (const auto& [name, value] : headers) {
    if (auto set = set_outbound_header(request, name, value); !set)
      co_return std::move(set).error();
  }

  auto executor = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  auto use = asio::redirect_error(asio::use_awaitable, ec);
  asio::ip::tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(host, port, use);
  if (ec) co_return failure("cannot resolve " + host + ": " + ec.message());

  if (!tls) {
    beast::tcp_stream stream(executor);
    stream.expires_after(timeout);
    co_await stream.async_connect(endpoints, use);
    if (ec) co_return failure("cannot connect to " + host + ":" + port + ": " + ec.message());
    co_return co_await exchange(stream, request, max_body, host);
  }

  TlsStream stream(executor, tls_.context());
  beast::get_lowest_layer(stream).expires_after(timeout);
  if (auto problem = TlsConnector::expect_host(stream, host)) co_return failure(*problem);
  co_await beast::get_lowest_layer(stream).async_connect(endpoints, use);
  if (ec) co_return failure("cannot connect to " + host + ":" + port + ": " + ec.message());
  const std::string server = host + ":" + port;
  auto refused = co_await TlsConnector::handshake(stream, server);
  if (refused) co_return failure(*refused);
  co_return co_await exchange(stream, request, max_body, host);
}

}  // namespace mxcd::http
