// The HTTP/1.1 server: one coroutine per connection reading a request head, dispatching it
// through the Router, streaming the body in and the response out, with keep-alive.
// Limits: request-head size, connection count, a deadline on every wait (head, body, write,
// keep-alive). stop() shuts down gracefully: no new connections, idle ones closed, requests
// in flight given up to the grace period.
#pragma once

#include "core/config.hpp"
#include "http/router.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace mxcd::http {

class Connection;

class Server {
 public:
  Server(boost::asio::io_context& io, const Config::Http& limits, const Router& router);
  ~Server();

  // Binds and starts accepting. Throws boost::system::system_error when the address is taken.
  void start(const boost::asio::ip::tcp::endpoint& endpoint);
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Graceful shutdown; safe to call from any thread, more than once.
  void stop();
  // True when the grace period ran out with requests still in flight.
  bool abandoned_requests() const { return abandoned_.load(); }

 private:
  friend class Connection;

  boost::asio::awaitable<void> accept_loop();
  void on_connection_closed(Connection* connection);
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  boost::asio::io_context& io_;
  const Config::Http& limits_;
  const Router& router_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer grace_timer_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> abandoned_{false};

  std::mutex connections_mutex_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
};

}  // namespace mxcd::http
