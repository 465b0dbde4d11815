#include "http/connection.hpp"

#include "core/ip_network.hpp"
#include "core/version.hpp"
#include "http/access_log.hpp"
#include "http/body_deadline.hpp"
#include "http/forwarded_for.hpp"
#include "http/request_head.hpp"
#include "http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <ctime>

namespace mxcd::http {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = Connection::Clock;

namespace {

// Bodies of endpoints that do not stream their body are read whole, up to this size.
constexpr std::size_t kSmallBodyLimit = 64 * 1024;
// The first read of a request head.
constexpr std::size_t kRequestReadSize = 4096;
// Read-ahead buffer while a body streams in; idle connections keep only a few KiB.
constexpr std::size_t kBodyReadBuffer = 64 * 1024;
constexpr std::size_t kIdleBufferLimit = 16 * 1024;
// How often a connection checks its deadline; timeouts are accurate to this.
constexpr auto kWatchdogTick = std::chrono::milliseconds(250);
// After deciding to close, how long to keep reading (and discarding) what the client still
// sends, so that it receives our final response instead of a connection reset.
constexpr auto kLingerTime = std::chrono::seconds(2);

// Headers every response carries (the specification asks for CORS and CORP everywhere).
constexpr std::string_view kCommonHeaders =
    "Access-Control-Allow-Origin: *\r\n"
    "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, DELETE, OPTIONS\r\n"
    "Access-Control-Allow-Headers: X-Requested-With, Content-Type, Authorization, Date\r\n"
    "Cross-Origin-Resource-Policy: cross-origin\r\n";

// The Date header, formatted once per second per thread.
std::string_view http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local std::array<char, 64> text{};
  thread_local std::size_t length = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    length = std::strftime(text.data(), text.size(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {text.data(), length};
}

std::string canned_error(unsigned status, std::string_view reason, std::string_view errcode,
                         std::string_view message) {
  std::string body =
      "{\"errcode\":\"" + std::string(errcode) + "\",\"error\":\"" + std::string(message) + "\"}";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += kCommonHeaders;
  out += "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
  return out;
}

}  // namespace

Connection::Connection(Server& server, tcp::socket socket)
    : server_(server), socket_(std::move(socket)), watchdog_timer_(socket_.get_executor()) {
  set_state(ConnectionState::pending);
}

Connection::~Connection() { server_.on_connection_closed(this); }

void Connection::arm_body_read() {
  arm(server_.limits_.idle_timeout);
  deadline_ = std::min(deadline_,
                       body_deadline(body_start_, body_received_, body_streamed_,
                                     server_.limits_.body_timeout, server_.limits_.min_body_rate));
}

awaitable<void> Connection::watchdog() {
  auto self = shared_from_this();
  while (!closed_) {
    watchdog_timer_.expires_after(kWatchdogTick);
    boost::system::error_code ec;
    co_await watchdog_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (closed_) break;
    access_log::flush_if_stale();
    if (Clock::now() >= deadline_) {
      timed_out_ = true;
      disarm();
      socket_.cancel(ec);
    }
  }
}

awaitable<void> Connection::run() {
  auto self = shared_from_this();
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  socket_.native_non_blocking(true, ec);
  peer_ = normalize_address(socket_.remote_endpoint(ec).address());
  if (!ec) {
    asio::co_spawn(socket_.get_executor(), watchdog(), asio::detached);
    auto wait = server_.limits_.header_timeout;  // for the first request's first byte
    while (co_await wait_for_next_request(wait)) {
      if (!co_await handle_request() || server_.stopping()) break;
      set_state(ConnectionState::idle);
      wait = server_.limits_.keepalive_timeout;
    }
  }
  closed_ = true;
  watchdog_timer_.cancel();
  socket_.close(ec);
  access_log::flush();
}

// Before each request: wait for its first bytes (for at most the header timeout on a new
// connection, the keep-alive timeout between requests).
// This is the only state in which a shutdown closes the connection at once. (A read, not
// async_wait: Asio re-registers the socket with epoll for every async_wait.)
awaitable<bool> Connection::wait_for_next_request(Clock::duration timeout) {
  if (buffer_.size() > 0) co_return true;  // a pipelined request is already here
  if (server_.stopping()) co_return false;
  awaiting_request_ = true;
  arm(timeout);
  boost::system::error_code ec;
  std::size_t n = co_await socket_.async_read_some(buffer_.prepare(kRequestReadSize),
                                                   asio::redirect_error(use_awaitable, ec));
  buffer_.commit(n);
  awaiting_request_ = false;
  disarm();
  co_return !ec && !server_.stopping();
}

awaitable<bool> Connection::handle_request() {
  const auto started = Clock::now();
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(server_.limits_.max_header_size));
  parser_->body_limit(boost::none);  // each endpoint enforces its own body limit
  body_failed_ = false;
  continue_sent_ = false;
  body_streamed_ = false;
  body_received_ = 0;
  timed_out_ = false;
  if (state_.load() != ConnectionState::pending) set_state(ConnectionState::pending);

  arm(server_.limits_.header_timeout);
  boost::system::error_code ec;
  co_await beast_http::async_read_header(socket_, buffer_, *parser_,
                                         asio::redirect_error(use_awaitable, ec));
  disarm();
  if (ec) {
    if (ec == beast_http::error::end_of_stream || ec == asio::error::connection_reset ||
        (ec == asio::error::eof && buffer_.size() == 0) || shed_) {
      co_return false;  // the client went away, or the connection made room for another
    }
    MatrixError error = MatrixError::bad_request("Malformed HTTP request");
    if (timed_out_) {
      error = MatrixError::bad_request("The request head did not arrive in time");
      error.status = 408;
    } else if (ec == beast_http::error::header_limit) {
      error = MatrixError::too_large("The request head is too large");
      error.status = 431;
    }
    co_return co_await refuse(error);
  }

  const auto& head = parser_->get();
  if (auto refused = check_request_head(head.version(), head.base())) {
    co_return co_await refuse(*refused);
  }
  set_state(ConnectionState::busy);
  Request request;
  request.method = head.method();
  request.headers = &head.base();
  request.client_address =
      forwarded_client(peer_, head.base()["X-Forwarded-For"], server_.limits_.trusted_proxies)
          .to_string();
  std::string_view target = head.target();

  Response response;
  auto url = boost::urls::parse_origin_form(target);
  if (!url) {
    response = error_response(MatrixError::bad_request("Malformed request target"));
  } else {
    request.path = url->encoded_path();
    for (auto segment : url->segments()) request.segments.push_back(segment);
    for (auto param : url->params()) request.query.emplace_back(param.key, param.value);
    response = co_await dispatch(request);
  }

  bool keep_alive = head.keep_alive() && !server_.stopping();
  // A body the handler left unread must be skipped before the next request can be read.
  // Skip only a short rest of a known length; otherwise close. A client that waits for
  // "100 Continue" will not send the rest at all.
  const bool body_left = !parser_->is_done();
  if (body_left) {
    bool waiting_for_continue =
        !continue_sent_ &&
        beast_http::token_list(head[beast_http::field::expect]).exists("100-continue");
    auto remaining = parser_->content_length_remaining();
    if (body_failed_ || waiting_for_continue || !remaining || *remaining > kSmallBodyLimit) {
      keep_alive = false;
    }
  }
  const bool head_only = request.method == beast_http::verb::head;
  const unsigned status = static_cast<unsigned>(response.status);
  const std::uint64_t bytes = head_only ? 0 : response.body_length();
  const bool sent = co_await write_response(response, head_only, keep_alive);
  if (sent && keep_alive && body_left) keep_alive = co_await discard_rest_of_body();

  const double duration_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  access_log::write(
      {head.method_string(), target, status, bytes, duration_ms, request.client_address, !sent});

  if (sent && !keep_alive) co_await linger_close();
  if (buffer_.capacity() > kIdleBufferLimit) buffer_.shrink_to_fit();
  co_return sent&& keep_alive;
}

// Answers a request that cannot be served and closes the connection: what follows its head
// cannot be trusted to be the next request.
awaitable<bool> Connection::refuse(const MatrixError& error) {
  Response response = error_response(error);
  co_await write_response(response, false, false);
  co_await linger_close();
  co_return false;
}

MatrixError Connection::body_read_error() const {
  if (!timed_out_) return MatrixError::bad_request("The request body ended early");
  MatrixError error = MatrixError::bad_request("Timed out reading the request body");
  error.status = 408;
  return error;
}

awaitable<Response> Connection::dispatch(Request& request) {
  if (request.method == beast_http::verb::options) {
    // CORS preflight: answered for every path, without authentication or endpoint logic.
    Response response;
    response.status = beast_http::status::no_content;
    co_return response;
  }
  auto match = server_.router_.match(request.method, request.segments);
  if (!match) co_return error_response(MatrixError::unrecognized());
  if (!match->handler) {
    Response response = error_response(MatrixError::method_not_allowed());
    response.set_header("Allow", match->allowed_methods);
    co_return response;
  }
  request.params = std::move(match->params);
  if (match->body_mode == BodyMode::none) {
    if (!parser_->is_done()) {
      body_failed_ = true;  // never read: the connection closes after the answer
      co_return error_response(MatrixError::too_large("This endpoint takes no request body"));
    }
  } else if (match->body_mode == BodyMode::streamed) {
    body_streamed_ = true;
    request.body = this;
  } else if (!parser_->is_done() && !co_await read_small_body(request.small_body)) {
    co_return error_response(body_failed_ ? body_read_error()
                                          : MatrixError::too_large("Request body too large"));
  }
  try {
    co_return co_await (*match->handler)(request);
  } catch (const std::exception& e) {
    spdlog::error("handler failed: path={} error={}", request.path, e.what());
    co_return error_response(MatrixError::internal("Internal server error"));
  }
}

awaitable<Result<std::size_t>> Connection::read_some(asio::mutable_buffer buffer) {
  if (parser_->is_done()) co_return std::size_t{0};
  if (body_failed_) co_return body_read_error();
  boost::system::error_code ec;
  if (!continue_sent_) {
    continue_sent_ = true;
    body_start_ = Clock::now();
    if (beast_http::token_list(parser_->get()[beast_http::field::expect]).exists("100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      arm(server_.limits_.idle_timeout);
      co_await asio::async_write(socket_, asio::buffer(kContinue),
                                 asio::redirect_error(use_awaitable, ec));
      disarm();
    }
  }
  // Beast reads into buffer_ only as much as its free capacity (at least 512 bytes): without
  // room, a large body would arrive in ~1 KiB reads. handle_request() shrinks it again.
  if (buffer_.capacity() < kBodyReadBuffer) buffer_.reserve(kBodyReadBuffer);
  auto& body = parser_->get().body();
  body.data = buffer.data();
  body.size = buffer.size();
  body.more = true;
  // A read may consume only framing (a chunk header) and deliver no body bytes; 0 must mean
  // the end of the body, so keep reading until there are bytes or the body is complete.
  while (!ec && body.size == buffer.size() && !parser_->is_done()) {
    arm_body_read();
    co_await beast_http::async_read_some(socket_, buffer_, *parser_,
                                         asio::redirect_error(use_awaitable, ec));
    disarm();
    if (ec == beast_http::error::need_buffer) ec = {};
  }
  if (ec) {
    body_failed_ = true;
    co_return body_read_error();
  }
  body_received_ += buffer.size() - body.size;
  co_return buffer.size() - body.size;
}

awaitable<bool> Connection::read_small_body(std::string& out) {
  std::array<char, 8192> chunk{};
  while (true) {
    auto n = co_await read_some(asio::buffer(chunk));
    if (!n) co_return false;
    if (*n == 0) co_return true;
    if (out.size() + *n > kSmallBodyLimit) co_return false;
    out.append(chunk.data(), *n);
  }
}

awaitable<bool> Connection::discard_rest_of_body() {
  std::array<char, 8192> chunk{};
  std::uint64_t discarded = 0;
  while (discarded <= kSmallBodyLimit) {
    auto n = co_await read_some(asio::buffer(chunk));
    if (!n) co_return false;
    if (*n == 0) co_return true;
    discarded += *n;
  }
  co_return false;
}

awaitable<bool> Connection::write_response(Response& response, bool head_only, bool keep_alive) {
  const unsigned status = static_cast<unsigned>(response.status);
  const bool has_body = status >= 200 && status != 204 && status != 304;

  std::string head;
  head.reserve(768);
  head += "HTTP/1.1 ";
  head += std::to_string(status);
  head += ' ';
  head += std::string_view(beast_http::obsolete_reason(response.status));
  head += "\r\nDate: ";
  head += http_date();
  head += "\r\nServer: mxcd/";
  head += kVersion;
  head += "\r\n";
  head += kCommonHeaders;
  if (has_body) {
    head += "Content-Length: ";
    head += std::to_string(response.body_length());
    head += "\r\n";
  }
  if (!keep_alive) head += "Connection: close\r\n";
  head += response.header_lines;
  head += "\r\n";

  boost::system::error_code ec;
  arm(server_.limits_.idle_timeout);
  auto* text = std::get_if<std::string>(&response.body);
  auto* file = std::get_if<FileBody>(&response.body);
  if (head_only || !has_body || (!text && !file)) {
    co_await asio::async_write(socket_, asio::buffer(head),
                               asio::redirect_error(use_awaitable, ec));
  } else if (text) {
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(*text)};
    co_await asio::async_write(socket_, buffers, asio::redirect_error(use_awaitable, ec));
  } else {
    // MSG_MORE lets the kernel put the head and the first file bytes in one segment.
    std::string_view rest = head;
    while (!rest.empty() && !ec) {
      std::size_t n = co_await socket_.async_send(asio::buffer(rest.data(), rest.size()), MSG_MORE,
                                                  asio::redirect_error(use_awaitable, ec));
      rest.remove_prefix(n);
    }
    if (!ec && !co_await send_file(*file)) ec = asio::error::broken_pipe;
  }
  disarm();
  co_return !ec;
}

awaitable<bool> Connection::send_file(FileBody& file) {
  off_t offset = static_cast<off_t>(file.offset);
  std::uint64_t remaining = file.length;
  while (remaining > 0) {
    std::uint64_t sendable = remaining;
    if (file.growing) {
      // Send what the producer has written so far; wait for more when it is all sent.
      const std::uint64_t available = file.growing->available();
      if (available <= static_cast<std::uint64_t>(offset)) {
        if (file.growing->state() != GrowingFile::State::growing) {
          if (file.growing->available() > static_cast<std::uint64_t>(offset)) continue;
          spdlog::warn("the file being fetched broke off: {} bytes not sent", remaining);
          co_return false;
        }
        disarm();  // the producer has its own deadlines
        co_await file.growing->wait_beyond(static_cast<std::uint64_t>(offset));
        arm(server_.limits_.idle_timeout);
        continue;
      }
      sendable = std::min(remaining, available - static_cast<std::uint64_t>(offset));
    }
    ssize_t n = ::sendfile(socket_.native_handle(), file.fd.get(), &offset,
                           static_cast<std::size_t>(std::min<std::uint64_t>(sendable, 1 << 30)));
    if (n > 0) {
      remaining -= static_cast<std::uint64_t>(n);
      arm(server_.limits_.idle_timeout);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      boost::system::error_code ec;
      co_await socket_.async_wait(tcp::socket::wait_write, asio::redirect_error(use_awaitable, ec));
      if (ec) co_return false;
      continue;
    }
    if (n == 0) spdlog::error("file ended early while sending: {} bytes missing", remaining);
    co_return false;
  }
  co_return true;
}

awaitable<void> Connection::linger_close() {
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  timed_out_ = false;
  arm(kLingerTime);
  std::array<char, 16 * 1024> sink{};
  while (!ec) {
    co_await socket_.async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, ec));
  }
  disarm();
}

awaitable<void> refuse_connection(std::shared_ptr<tcp::socket> socket) {
  static const std::string busy =
      canned_error(503, "Service Unavailable", "M_LIMIT_EXCEEDED", "Too many open connections");
  boost::system::error_code ec;
  co_await asio::async_write(*socket, asio::buffer(busy), asio::redirect_error(use_awaitable, ec));
  socket->shutdown(tcp::socket::shutdown_send, ec);
  asio::steady_timer deadline(socket->get_executor(), kLingerTime);
  deadline.async_wait([socket](boost::system::error_code e) {
    if (!e) socket->cancel(e);
  });
  std::array<char, 4096> sink{};
  while (!ec) {
    co_await socket->async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, ec));
  }
  deadline.cancel();
}

}  // namespace mxcd::http
