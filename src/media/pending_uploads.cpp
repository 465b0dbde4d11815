#include "media/pending_uploads.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mxcd {

namespace asio = boost::asio;

namespace {
std::string waiter_key(const MediaKey& key) { return key.server_name + '/' + key.media_id; }
}  // namespace

UploadWaiters::Subscription::Subscription(UploadWaiters& owner, std::string key,
                                          asio::any_io_executor executor)
    : owner_(owner), key_(std::move(key)), state_(std::make_shared<State>(std::move(executor))) {
  std::lock_guard lock(owner_.mutex_);
  owner_.subscribers_.emplace(key_, state_);
}

UploadWaiters::Subscription::~Subscription() {
  std::lock_guard lock(owner_.mutex_);
  auto [begin, end] = owner_.subscribers_.equal_range(key_);
  for (auto it = begin; it != end; ++it) {
    if (it->second == state_) {
      owner_.subscribers_.erase(it);
      break;
    }
  }
}

asio::awaitable<void> UploadWaiters::Subscription::wait(Duration timeout) {
  // Each announcement is consumed once, so a caller that finds the media still pending
  // afterwards waits again instead of spinning.
  if (!state_->announced) {
    state_->timer.expires_after(timeout);
    boost::system::error_code ec;
    co_await state_->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  state_->announced = false;
}

asio::awaitable<std::unique_ptr<UploadWaiters::Subscription>> UploadWaiters::subscribe(
    const MediaKey& key) {
  auto executor = co_await asio::this_coro::executor;
  co_return std::make_unique<Subscription>(*this, waiter_key(key), executor);
}

void UploadWaiters::announce(const MediaKey& key) {
  std::lock_guard lock(mutex_);
  auto [begin, end] = subscribers_.equal_range(waiter_key(key));
  for (auto it = begin; it != end; ++it) wake(it->second);
}

void UploadWaiters::announce_all() {
  std::lock_guard lock(mutex_);
  for (auto& [key, state] : subscribers_) wake(state);
}

void UploadWaiters::wake(const std::shared_ptr<Subscription::State>& state) {
  // Run on the waiter's own executor: the timer is not thread-safe. If the wake-up runs
  // before the waiter reaches wait(), the flag makes wait() return at once.
  asio::post(state->timer.get_executor(), [state] {
    state->announced = true;
    state->timer.cancel();
  });
}

}  // namespace mxcd
