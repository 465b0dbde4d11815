#include "http/server.hpp"

#include "http/connection.hpp"
#include "http/connection_budget.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <vector>

namespace mxcd::http {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

Server::Server(IoThreads& threads, const Config::Http& limits, const Router& router,
               std::function<void()> on_drained)
    : threads_(threads),
      limits_(limits),
      router_(router),
      acceptor_(threads.main()),
      grace_timer_(threads.main()),
      on_drained_(std::move(on_drained)) {}

Server::~Server() = default;

void Server::start(const tcp::endpoint& endpoint) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
}

tcp::endpoint Server::local_endpoint() const { return acceptor_.local_endpoint(); }

awaitable<void> Server::accept_loop() {
  while (acceptor_.is_open()) {
    boost::system::error_code ec;
    // Each connection goes to one network thread and stays there.
    tcp::socket socket =
        co_await acceptor_.async_accept(threads_.next(), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (!acceptor_.is_open() || ec == asio::error::operation_aborted) break;
      // Out of file descriptors, usually: pause instead of spinning on the error.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    std::shared_ptr<Connection> connection;
    std::shared_ptr<Connection> to_shed;
    {
      std::lock_guard lock(connections_mutex_);
      Admission admission{true, std::nullopt};
      // Below both limits there is nothing to decide.
      if (connections_.size() >=
          std::min(limits_.max_pending_connections, limits_.max_connections)) {
        std::vector<Connection*> open;
        std::vector<ConnectionSlot> slots;
        open.reserve(connections_.size());
        slots.reserve(connections_.size());
        for (auto& [raw, weak] : connections_) {
          if (raw->leaving_.load()) continue;  // already chosen to make room
          open.push_back(raw);
          slots.push_back(raw->slot());
        }
        admission =
            admit_connection(slots, limits_.max_connections, limits_.max_pending_connections);
        if (admission.shed) {
          open[*admission.shed]->leaving_.store(true);
          to_shed = connections_.find(open[*admission.shed])->second.lock();
        }
      }
      if (admission.accept) {
        connection = std::make_shared<Connection>(*this, std::move(socket));
        connections_.emplace(connection.get(), connection);
      }
    }
    if (to_shed) {
      // The shed connection leaves its slot when it has closed, shortly after this one took it.
      asio::post(to_shed->executor(), [to_shed] { to_shed->shed(); });
    }
    if (connection) {
      // The lambda owns the connection until run() takes its own reference.
      asio::co_spawn(
          connection->executor(), [connection] { return connection->run(); }, asio::detached);
      continue;
    }
    // Over the connection limit: answer on the new socket's thread and close it.
    spdlog::warn("connection limit of {} reached, refusing a connection", limits_.max_connections);
    // NOLINTNEXTLINE(bugprone-use-after-move): only an accepted socket was moved, and it left above
    auto refused = std::make_shared<tcp::socket>(std::move(socket));
    asio::co_spawn(refused->get_executor(), refuse_connection(refused), asio::detached);
  }
}

void Server::on_connection_closed(Connection* connection) {
  std::lock_guard lock(connections_mutex_);
  connections_.erase(connection);
  if (connections_.empty() && stopping())
    asio::post(acceptor_.get_executor(), [this] { drained(); });
}

void Server::drained() {
  if (drained_) return;
  drained_ = true;
  grace_timer_.cancel();
  on_drained_();
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(connections_mutex_);
    for (auto& [raw, weak] : connections_) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  spdlog::info("shutting down: {} connection(s) open, grace period {} ms", open.size(),
               limits_.shutdown_grace_period.count());
  for (auto& c : open) asio::post(c->executor(), [c] { c->on_server_stopping(); });
  open.clear();
  // On the main context, where on_connection_closed() also reports: whichever runs first,
  // the process never waits out the grace period with nothing in flight.
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    {
      std::lock_guard lock(connections_mutex_);
      if (connections_.empty()) return drained();
    }
    grace_timer_.expires_after(limits_.shutdown_grace_period);
    grace_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || drained_) return;
      spdlog::warn("grace period over: abandoning the requests still in flight");
      abandoned_ = true;
      threads_.stop();
    });
  });
}

}  // namespace mxcd::http
