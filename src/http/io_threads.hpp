// The network threads: one io_context per thread. A connection lives on one context for its
// whole life, so its handlers run on one thread and need no strand or lock. The first
// context also carries the acceptor, signals and timers.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <vector>

namespace mxcd::http {

class IoThreads {
 public:
  explicit IoThreads(unsigned count);

  boost::asio::io_context& main() { return *contexts_.front(); }
  // The context for the next new connection, round-robin.
  boost::asio::io_context& next();

  // Runs every context, one thread each (the caller's thread runs main()). Returns when all
  // of them have stopped or, after release(), run out of work.
  void run();
  // Lets the contexts finish once their work is done (graceful shutdown).
  void release();
  // Stops every context now.
  void stop();

 private:
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace mxcd::http
