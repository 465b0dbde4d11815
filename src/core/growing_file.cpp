#include "core/growing_file.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mxcd {

namespace asio = boost::asio;

struct GrowingFile::Waiter {
  explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  bool woken = false;  // touched only on the timer's executor
};

void GrowingFile::advance(std::uint64_t available) {
  std::unique_lock lock(mutex_);
  if (available <= available_) return;
  available_ = available;
  wake_all(lock);
}

void GrowingFile::finish(bool complete) {
  std::unique_lock lock(mutex_);
  state_ = complete ? State::complete : State::failed;
  wake_all(lock);
}

void GrowingFile::wake_all(std::unique_lock<std::mutex>& lock) {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  lock.unlock();
  for (auto& waiter : waiters) {
    // The timer is not thread-safe: cancel it on its own executor. A wake-up that runs before
    // the reader reaches async_wait() is remembered by the flag.
    asio::post(waiter->timer.get_executor(), [waiter] {
      waiter->woken = true;
      waiter->timer.cancel();
    });
  }
}

std::uint64_t GrowingFile::available() const {
  std::lock_guard lock(mutex_);
  return available_;
}

GrowingFile::State GrowingFile::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

asio::awaitable<void> GrowingFile::wait_beyond(std::uint64_t offset) {
  auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor);
  {
    std::lock_guard lock(mutex_);
    if (available_ > offset || state_ != State::growing) co_return;
    waiters_.push_back(waiter);
  }
  if (!waiter->woken) {
    waiter->timer.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ignored;
    co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

}  // namespace mxcd
