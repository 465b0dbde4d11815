// One client connection of the HTTP server (server.hpp): a coroutine that waits for a
// request head, dispatches it through the Router, lets the handler stream the body in (this
// object is the request's ByteSource), writes the response and waits for the next request.
// Every wait has a deadline, checked by a watchdog: the head within header_timeout, each body
// or write step within idle_timeout (a body also within body_timeout at min_body_rate), the
// next request within keepalive_timeout. A body the handler left unread is skipped when it is
// short, else the connection closes after the answer. Before closing, the connection keeps
// reading for a moment so that the client receives the answer rather than a reset.
#pragma once

#include "http/connection_budget.hpp"
#include "http/router.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace mxcd::http {

class Server;

class Connection : public ByteSource, public std::enable_shared_from_this<Connection> {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(Server& server, boost::asio::ip::tcp::socket socket);
  // Gives the connection's slot back to the server.
  ~Connection() override;

  boost::asio::any_io_executor executor() { return socket_.get_executor(); }

  boost::asio::awaitable<void> run();

  // Called on the connection's thread when the server shuts down.
  void on_server_stopping() {
    if (awaiting_request_) {
      boost::system::error_code ignored;
      socket_.cancel(ignored);
    }
  }

  // Set by the accepting thread once it has chosen this connection to make room.
  std::atomic<bool> leaving_{false};

  // Read from the accepting thread while the connection runs on its own.
  ConnectionSlot slot() const {
    return {state_.load(), Clock::time_point(Clock::duration(since_.load()))};
  }

  // Called on the connection's thread to make room for a new connection: closes this one
  // unless it has started serving a request meanwhile.
  void shed() {
    if (state_.load() == ConnectionState::busy) {
      leaving_.store(false);
      return;
    }
    shed_ = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

  std::optional<std::uint64_t> announced_length() const override {
    if (!parser_ || parser_->chunked()) return std::nullopt;
    return parser_->content_length().value_or(0);
  }

  boost::asio::awaitable<Result<std::size_t>> read_some(
      boost::asio::mutable_buffer buffer) override;

 private:
  boost::asio::awaitable<void> watchdog();
  void arm(Clock::duration timeout) { deadline_ = Clock::now() + timeout; }
  void disarm() { deadline_ = Clock::time_point::max(); }
  // For one read of the body: the idle timeout, or sooner the body's own deadline.
  void arm_body_read();
  void set_state(ConnectionState state) {
    state_.store(state);
    since_.store(Clock::now().time_since_epoch().count());
  }
  MatrixError body_read_error() const;
  boost::asio::awaitable<bool> refuse(const MatrixError& error);

  boost::asio::awaitable<bool> wait_for_next_request(Clock::duration timeout);
  boost::asio::awaitable<bool> handle_request();
  boost::asio::awaitable<Response> dispatch(Request& request);
  boost::asio::awaitable<bool> read_small_body(std::string& out);
  boost::asio::awaitable<bool> discard_rest_of_body();
  boost::asio::awaitable<bool> write_response(Response& response, bool head_only, bool keep_alive);
  boost::asio::awaitable<bool> send_file(FileBody& file);
  boost::asio::awaitable<void> linger_close();

  Server& server_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer watchdog_timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
  bool closed_ = false;
  bool awaiting_request_ = false;
  bool body_failed_ = false;
  bool continue_sent_ = false;
  bool shed_ = false;
  bool body_streamed_ = false;
  Clock::time_point body_start_;
  std::uint64_t body_received_ = 0;
  std::atomic<ConnectionState> state_{ConnectionState::pending};
  std::atomic<Clock::rep> since_{0};
  boost::asio::ip::address peer_;
  boost::beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::buffer_body>> parser_;
};

// Answers a connection the server has no slot for with 503 M_LIMIT_EXCEEDED and closes it.
boost::asio::awaitable<void> refuse_connection(
    std::shared_ptr<boost::asio::ip::tcp::socket> socket);

}  // namespace mxcd::http
