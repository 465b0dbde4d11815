#include "http/client.hpp"

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

asio::awaitable<Result<ClientResponse>> http_get(
    const std::string& url, const std::vector<std::pair<std::string, std::string>>& headers,
    Duration timeout, std::size_t max_body) {
  auto fail = [&](const std::string& why) {
    MatrixError e;
    e.status = 502;
    e.message = why;
    return e;
  };
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || parsed->scheme() != "http" || parsed->host().empty()) {
    co_return fail("not an http:// URL: " + url);
  }
  std::string host = parsed->host_address();
  std::string port = parsed->has_port() ? std::string(parsed->port()) : "80";
  std::string target = parsed->encoded_target().empty() ? "/" : std::string(parsed->encoded_target());

  auto executor = co_await asio::this_coro::executor;
  beast::tcp_stream stream(executor);
  stream.expires_after(timeout);
  boost::system::error_code ec;
  auto use = asio::redirect_error(asio::use_awaitable, ec);

  asio::ip::tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(host, port, use);
  if (ec) co_return fail("cannot resolve " + host + ": " + ec.message());
  co_await stream.async_connect(endpoints, use);
  if (ec) co_return fail("cannot connect to " + host + ":" + port + ": " + ec.message());

  beast_http::request<beast_http::empty_body> request{beast_http::verb::get, target, 11};
  request.set(beast_http::field::host, std::string(parsed->encoded_host_and_port()));
  request.set(beast_http::field::user_agent, "mxcd");
  for (const auto& [name, value] : headers) request.set(name, value);
  co_await beast_http::async_write(stream, request, use);
  if (ec) co_return fail("cannot send the request to " + host + ": " + ec.message());

  beast::flat_buffer buffer;
  beast_http::response_parser<beast_http::string_body> parser;
  parser.body_limit(max_body);
  co_await beast_http::async_read(stream, buffer, parser, use);
  if (ec) co_return fail("no valid answer from " + host + ": " + ec.message());

  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  auto& response = parser.get();
  co_return ClientResponse{static_cast<unsigned>(response.result_int()), std::move(response.body())};
}

}  // namespace mxcd::http
