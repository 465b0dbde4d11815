#include "core/http_grammar.hpp"
#include "http/client.hpp"
#include "http/outbound_header.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <gtest/gtest.h>

#include <optional>

namespace mxcd::http {
namespace {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;

TEST(OutboundHeader, RefusesLineBreaksAndNul) {
  beast_http::request<beast_http::empty_body> request;
  for (std::string_view bad : {std::string_view("x\r\nX-Injected: yes"), std::string_view("x\r"),
                               std::string_view("x\n"), std::string_view("x\0y", 3)}) {
    auto set = set_outbound_header(request, "Authorization", bad);
    ASSERT_FALSE(set);
    EXPECT_EQ(set.error().status, 400u);
    // The value may be a secret: the error names the header only.
    EXPECT_EQ(set.error().message.find('x'), std::string::npos) << set.error().message;
  }
  EXPECT_EQ(request.find("Authorization"), request.end());
  EXPECT_FALSE(set_outbound_header(request, "Bad Name", "v"));
  EXPECT_FALSE(set_outbound_header(request, "", "v"));
  EXPECT_FALSE(set_outbound_header(request, "X-A\r\nX-B", "v"));
  ASSERT_TRUE(set_outbound_header(request, "Content-Type", "image/png; name=\"a b\"\t\x80"));
  EXPECT_EQ(request["Content-Type"], "image/png; name=\"a b\"\t\x80");
}

// The homeserver client passes its callers' headers through the gate, and refuses before it
// connects: the listener below never sees a connection.
TEST(OutboundHeader, ClientSendsNothingWhenAHeaderIsUnsafe) {
  asio::io_context context;
  asio::ip::tcp::acceptor listener(context, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = listener.local_endpoint().port();
  Client client;
  std::optional<Result<ClientResponse>> outcome;
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Authorization", "Bearer x\r\nX-Injected: yes"}};
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/whoami";
  auto attempt = [&]() -> asio::awaitable<void> {
    auto result = co_await client.get(url, headers, std::chrono::seconds(5));
    outcome.emplace(std::move(result));
  };
  asio::co_spawn(context, attempt(), asio::detached);
  context.run();
  ASSERT_TRUE(outcome.has_value());
  ASSERT_FALSE(*outcome);
  EXPECT_EQ(outcome->error().status, 400u);
  listener.non_blocking(true);
  boost::system::error_code ec;
  listener.accept(ec);
  EXPECT_EQ(ec, asio::error::would_block);
}

TEST(HttpGrammar, AccessTokens) {
  EXPECT_TRUE(is_access_token("syt_YWxpY2U_KbLzRzSeWiGFnNgiVPpd_3jaVAA"));
  EXPECT_TRUE(is_access_token("abc/DEF+ghi=="));
  EXPECT_TRUE(is_access_token("MDAxOGxvY2F0aW9uIGxvY2FsaG9zdAowMDEzaWRlbnRpZmllciBrZXkK"));
  for (std::string_view bad :
       {"", "a b", "a\tb", "a\r\nb", "a\"b", "a,b", "a;b", "a\\b", "t\xc3\xa9", "a\x7f"}) {
    EXPECT_FALSE(is_access_token(bad)) << bad;
  }
}

}  // namespace
}  // namespace mxcd::http
