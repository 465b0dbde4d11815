// A coroutine's wait that any thread can end. The wake-up runs on the waiter's own executor
// (a timer is not thread-safe), and one that arrives before the wait starts is kept, so
// that a waiter never sleeps through it. Shared: the waker may outlive the waiter's frame.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>

namespace mxcd {

class Wakeup {
 public:
  explicit Wakeup(const boost::asio::any_io_executor& executor) : timer_(executor) {}

  // From any thread.
  static void wake(const std::shared_ptr<Wakeup>& wakeup) {
    boost::asio::post(wakeup->timer_.get_executor(), [wakeup] {
      wakeup->woken_ = true;
      wakeup->timer_.cancel();
    });
  }

  // Returns when woken or when the timeout passes; each wake-up ends one wait.
  boost::asio::awaitable<void> wait(std::chrono::milliseconds timeout) {
    if (!woken_) {
      timer_.expires_after(timeout);
      boost::system::error_code ignored;
      co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    }
    woken_ = false;
  }

 private:
  boost::asio::steady_timer timer_;
  bool woken_ = false;  // touched only on the timer's executor
};

}  // namespace mxcd
