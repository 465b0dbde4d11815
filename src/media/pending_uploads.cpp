#include "media/pending_uploads.hpp"

#include <boost/asio/this_coro.hpp>

namespace mxcd {

namespace asio = boost::asio;

namespace {
std::string waiter_key(const MediaKey& key) { return key.server_name + '/' + key.media_id; }
}  // namespace

UploadWaiters::Subscription::Subscription(UploadWaiters& owner, std::string key,
                                          asio::any_io_executor executor)
    : owner_(owner), key_(std::move(key)), wakeup_(std::make_shared<Wakeup>(std::move(executor))) {
  std::lock_guard lock(owner_.mutex_);
  owner_.subscribers_.emplace(key_, wakeup_);
}

UploadWaiters::Subscription::~Subscription() {
  std::lock_guard lock(owner_.mutex_);
  auto [begin, end] = owner_.subscribers_.equal_range(key_);
  for (auto it = begin; it != end; ++it) {
    if (it->second == wakeup_) {
      owner_.subscribers_.erase(it);
      break;
    }
  }
}

asio::awaitable<void> UploadWaiters::Subscription::wait(Duration timeout) {
  // Each announcement is consumed once, so a caller that finds the media still pending
  // afterwards waits again instead of spinning.
  co_await wakeup_->wait(timeout);
}

asio::awaitable<std::unique_ptr<UploadWaiters::Subscription>> UploadWaiters::subscribe(
    const MediaKey& key) {
  auto executor = co_await asio::this_coro::executor;
  co_return std::make_unique<Subscription>(*this, waiter_key(key), executor);
}

void UploadWaiters::announce(const MediaKey& key) {
  std::lock_guard lock(mutex_);
  auto [begin, end] = subscribers_.equal_range(waiter_key(key));
  for (auto it = begin; it != end; ++it) Wakeup::wake(it->second);
}

void UploadWaiters::announce_all() {
  std::lock_guard lock(mutex_);
  for (auto& [key, wakeup] : subscribers_) Wakeup::wake(wakeup);
}

}  // namespace mxcd
