#include "http/io_threads.hpp"

#include <boost/asio/post.hpp>

#include <thread>

namespace mxcd::http {

IoThreads::IoThreads(unsigned count) {
  for (unsigned i = 0; i < std::max(count, 1U); ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.push_back(boost::asio::make_work_guard(*contexts_.back()));
  }
}

boost::asio::io_context& IoThreads::next() {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void IoThreads::run() {
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < contexts_.size(); ++i) {
    threads.emplace_back([context = contexts_[i].get()] { context->run(); });
  }
  contexts_.front()->run();
  for (auto& t : threads) t.join();
}

void IoThreads::release() {
  // Work guards are not thread-safe; each is reset on the main context's thread.
  boost::asio::post(main(), [this] {
    for (auto& guard : guards_) guard.reset();
  });
}

void IoThreads::stop() {
  for (auto& context : contexts_) context->stop();
}

}  // namespace mxcd::http
