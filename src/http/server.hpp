// The HTTP/1.1 server: accepts connections, hands each to a network thread where it runs as
// one coroutine (connection.hpp: requests, bodies, deadlines), and keeps the connection
// budget: when the slots are taken, an idle or slow connection makes room, and a connection
// for which there is no room at all is answered 503 (connection_budget.hpp).
// stop() shuts down gracefully: no new connections, idle ones closed, requests in flight
// given up to the grace period.
#pragma once

#include "core/config.hpp"
#include "http/io_threads.hpp"
#include "http/router.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace mxcd::http {

class Connection;

class Server {
 public:
  // on_drained runs (on the main context) once a stop() has seen the last connection close.
  Server(IoThreads& threads, const Config::Http& limits, const Router& router,
         std::function<void()> on_drained);
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
  void drained();  // on the main context
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  IoThreads& threads_;
  const Config::Http& limits_;
  const Router& router_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer grace_timer_;  // on the main context, like the acceptor
  std::function<void()> on_drained_;
  bool drained_ = false;  // touched only on the main context
  std::atomic<bool> stopping_{false};
  std::atomic<bool> abandoned_{false};

  std::mutex connections_mutex_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
};

}  // namespace mxcd::http
