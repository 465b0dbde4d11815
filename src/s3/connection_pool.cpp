#include "s3/connection_pool.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mxcd::s3 {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kMaxIdle = std::chrono::seconds(4);
constexpr std::size_t kMaxIdleConnections = 64;

}  // namespace

ConnectionPool::ConnectionPool(std::string host, std::string port, bool tls,
                               const std::filesystem::path& ca_file, Duration connect_timeout)
    : host_(std::move(host)),
      port_(std::move(port)),
      tls_(tls),
      connect_timeout_(connect_timeout),
      connector_(ca_file) {}

awaitable<std::unique_ptr<Connection>> ConnectionPool::acquire() {
  auto executor = co_await asio::this_coro::executor;
  {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    std::erase_if(idle_, [&](const auto& c) { return now - c->idle_since > kMaxIdle; });
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
      if ((*it)->context == &executor.context()) {
        auto c = std::move(*it);
        idle_.erase(std::next(it).base());
        c->reused = true;
        co_return c;
      }
    }
  }
  co_return co_await connect();
}

void ConnectionPool::release(std::unique_ptr<Connection> c) {
  c->idle_since = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
}

awaitable<std::unique_ptr<Connection>> ConnectionPool::connect() {
  auto executor = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  auto use = asio::redirect_error(asio::use_awaitable, ec);
  tcp::resolver::results_type endpoints;
  // Names under .localhost are loopback (RFC 6761); glibc does not resolve them all.
  if (host_ == "localhost" || host_.ends_with(".localhost")) {
    endpoints = tcp::resolver::results_type::create(
        tcp::endpoint(asio::ip::address_v4::loopback(),
                      static_cast<unsigned short>(std::stoi(port_))),
        host_, port_);
  } else {
    tcp::resolver resolver(executor);
    endpoints = co_await resolver.async_resolve(host_, port_, use);
    if (ec) throw NetworkFailure{"cannot resolve " + host_ + ": " + ec.message()};
  }
  auto c = std::make_unique<Connection>();
  c->context = &executor.context();
  if (tls_) {
    c->tls = std::make_unique<http::TlsStream>(executor, connector_.context());
    if (auto problem = http::TlsConnector::expect_host(*c->tls, host_)) {
      throw NetworkFailure{*problem};
    }
  } else {
    c->plain = std::make_unique<beast::tcp_stream>(executor);
  }
  c->lowest().expires_after(connect_timeout_);
  co_await c->lowest().async_connect(endpoints, use);
  if (ec) {
    throw NetworkFailure{"cannot connect to " + host_ + ":" + port_ + ": " +
                         (ec == beast::error::timeout ? "timed out" : ec.message())};
  }
  c->lowest().socket().set_option(tcp::no_delay(true));
  if (tls_) {
    auto refused = co_await http::TlsConnector::handshake(*c->tls, host_);
    if (refused) throw NetworkFailure{*refused};
  }
  co_return c;
}

}  // namespace mxcd::s3
