#include "media/media_records.hpp"

#include "core/blocking.hpp"
#include "core/clock.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace mxcd {

namespace asio = boost::asio;

namespace {

// Longer than storing any one upload takes; a lease outlives its upload only after a crash.
constexpr std::chrono::milliseconds kLeaseDuration = std::chrono::hours(6);
// Deleting one blob normally takes milliseconds; an unreachable bucket makes it give up.
constexpr auto kLeaseRetryInterval = std::chrono::milliseconds(100);
constexpr auto kLeaseWaitLimit = std::chrono::minutes(2);

}  // namespace

MediaRecords::MediaRecords(MetadataStore& store, asio::thread_pool& blocking_pool,
                           std::size_t cache_capacity)
    : store_(store), blocking_pool_(blocking_pool), cache_capacity_(cache_capacity) {}

asio::awaitable<Result<RecordPtr>> MediaRecords::find(const MediaKey& key) {
  if (auto hit = cache_get(key)) co_return hit;
  co_return co_await find_fresh(key);
}

asio::awaitable<Result<RecordPtr>> MediaRecords::find_fresh(const MediaKey& key) {
  const std::uint64_t removals = removals_before_lookup();
  auto found = co_await run_blocking(blocking_pool_, [&] { return store_.find_media(key); });
  if (!found) co_return found.error();
  if (!*found) co_return RecordPtr();
  auto record = std::make_shared<const MediaRecord>(std::move(**found));
  // A record removed while it was being read must not come back into the cache.
  if (!record->pending()) cache_put(record, removals);
  co_return record;
}

asio::awaitable<Result<std::int64_t>> MediaRecords::lease_blob(
    const std::string& sha256, std::optional<MetadataStore::BlobToStore> storing) {
  const auto give_up = std::chrono::steady_clock::now() + kLeaseWaitLimit;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (true) {
    auto lease = co_await run_blocking(blocking_pool_, [&] {
      const std::int64_t now = now_ms();
      if (storing) storing->now = now;
      return store_.lease_blob(sha256, now + kLeaseDuration.count(), storing);
    });
    if (!lease) co_return lease.error();
    if (*lease) co_return **lease;
    // The same bytes are being deleted; storing them again must wait until that is over.
    if (std::chrono::steady_clock::now() >= give_up) {
      co_return MatrixError::unavailable("The media storage is busy; please try again");
    }
    timer.expires_after(kLeaseRetryInterval);
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

asio::awaitable<Result<std::int64_t>> MediaRecords::lease_adopted_blob(const std::string& sha256) {
  // Named: GCC 12 destroys a temporary passed to a coroutine's by-value parameter twice.
  const std::optional<MetadataStore::BlobToStore> storing;
  co_return co_await lease_blob(sha256, storing);
}

asio::awaitable<Result<std::int64_t>> MediaRecords::commit_leased(BlobWriter& writer,
                                                                  const BlobId& blob,
                                                                  std::string_view store) {
  const std::optional storing = MetadataStore::BlobToStore{blob, std::string(store), 0};
  auto lease = co_await lease_blob(blob.name, storing);
  if (!lease) co_return lease.error();
  if (auto status = co_await writer.commit(); !status) {
    release_lease(*lease);
    co_return status.error();
  }
  co_return *lease;
}

void MediaRecords::release_lease(std::int64_t lease) {
  asio::post(blocking_pool_, [this, lease] {
    if (auto status = store_.release_lease(lease); !status) {
      spdlog::warn("could not release blob lease {} (it will expire): {}", lease,
                   status.error().message);
    }
  });
}

asio::awaitable<Status> MediaRecords::insert(MediaRecord record, std::int64_t lease) {
  auto status =
      co_await run_blocking(blocking_pool_, [&] { return store_.insert_media(record, lease); });
  if (status) cache_put(std::make_shared<const MediaRecord>(std::move(record)));
  co_return status;
}

asio::awaitable<Result<std::optional<ThumbnailRecord>>> MediaRecords::find_thumbnail(
    const ThumbnailKey& key) {
  co_return co_await run_blocking(blocking_pool_, [&] { return store_.find_thumbnail(key); });
}

asio::awaitable<Result<std::optional<ThumbnailRecord>>> MediaRecords::insert_thumbnail(
    ThumbnailRecord record, std::int64_t lease) {
  co_return co_await run_blocking(blocking_pool_,
                                  [&] { return store_.insert_thumbnail(record, lease); });
}

asio::awaitable<Result<bool>> MediaRecords::remove(const MediaKey& key) {
  auto removed =
      co_await run_blocking(blocking_pool_, [&] { return store_.delete_media(key, now_ms()); });
  forget(key);
  co_return removed;
}

asio::awaitable<Result<MetadataStore::Reservation>> MediaRecords::reserve_pending(
    MediaRecord record, unsigned max_pending) {
  co_return co_await run_blocking(
      blocking_pool_, [&] { return store_.reserve_pending(record, max_pending, now_ms()); });
}

asio::awaitable<Result<MetadataStore::FillOutcome>> MediaRecords::fill_pending(MediaRecord record,
                                                                               std::int64_t lease) {
  co_return co_await run_blocking(blocking_pool_,
                                  [&] { return store_.fill_pending(record, lease, now_ms()); });
}

asio::awaitable<Status> MediaRecords::ping() {
  co_return co_await run_blocking(blocking_pool_, [&] { return store_.ping(); });
}

asio::awaitable<Status> MediaRecords::ping(std::chrono::milliseconds deadline) {
  // The ping runs on its own, as a blocking call cannot be cancelled: the first of its
  // answer and the deadline ends the wait. Both run on this executor, one thread.
  struct Race {
    explicit Race(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    std::optional<Status> answer;
  };
  auto executor = co_await asio::this_coro::executor;
  auto race = std::make_shared<Race>(executor);
  race->timer.expires_after(deadline);
  asio::co_spawn(
      executor,
      [this, race]() -> asio::awaitable<void> {
        race->answer = co_await ping();
        race->timer.expires_at(std::chrono::steady_clock::now());  // ends the wait, if any
      },
      asio::detached);
  boost::system::error_code ignored;
  co_await race->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  if (race->answer) co_return *race->answer;
  co_return MatrixError::unavailable("The database did not answer within " +
                                     std::to_string(deadline.count()) + " ms");
}

void MediaRecords::note_access(const MediaKey& key) {
  const std::int64_t now = now_ms();
  std::lock_guard lock(access_mutex_);
  auto [it, inserted] = access_times_.try_emplace(key, now);
  if (!inserted) it->second = now;
}

void MediaRecords::flush_access_times() {
  std::vector<AccessTime> batch;
  {
    std::lock_guard lock(access_mutex_);
    batch.reserve(access_times_.size());
    for (auto& [key, ts] : access_times_) batch.push_back(AccessTime{key, ts});
    access_times_.clear();
  }
  if (batch.empty()) return;
  if (auto status = store_.record_access(batch); !status) {
    spdlog::warn("could not record {} access time(s): {}", batch.size(), status.error().message);
  }
}

void MediaRecords::start_maintenance(asio::io_context& io, std::chrono::milliseconds interval) {
  maintenance_timer_ = std::make_unique<asio::steady_timer>(io);
  asio::co_spawn(
      io,
      [this, interval]() -> asio::awaitable<void> {
        while (true) {
          maintenance_timer_->expires_after(interval);
          boost::system::error_code ec;
          co_await maintenance_timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
          if (ec) co_return;  // stopped
          co_await run_blocking(blocking_pool_, [this] {
            flush_access_times();
            auto removed = store_.delete_expired_pending(now_ms());
            if (removed && *removed > 0) {
              spdlog::info("removed {} expired async upload reservation(s)", *removed);
            }
          });
        }
      },
      asio::detached);
}

void MediaRecords::stop() {
  if (maintenance_timer_) {
    asio::post(maintenance_timer_->get_executor(), [this] { maintenance_timer_->cancel(); });
  }
}

std::uint64_t MediaRecords::removals_before_lookup() {
  std::lock_guard lock(cache_mutex_);
  return removals_;
}

void MediaRecords::cache_put(RecordPtr record, std::optional<std::uint64_t> removals_seen) {
  std::lock_guard lock(cache_mutex_);
  if (removals_seen && *removals_seen != removals_) return;
  forget_cached(record->key);
  lru_.push_front(std::move(record));
  cache_index_.emplace(lru_.front()->key, lru_.begin());
  if (lru_.size() > cache_capacity_) {
    cache_index_.erase(lru_.back()->key);
    lru_.pop_back();
  }
}

void MediaRecords::forget(const MediaKey& key) {
  std::lock_guard lock(cache_mutex_);
  ++removals_;
  forget_cached(key);
}

void MediaRecords::forget_all() {
  std::lock_guard lock(cache_mutex_);
  ++removals_;
  lru_.clear();
  cache_index_.clear();
}

void MediaRecords::forget_cached(const MediaKey& key) {
  if (auto it = cache_index_.find(key); it != cache_index_.end()) {
    lru_.erase(it->second);
    cache_index_.erase(it);
  }
}

RecordPtr MediaRecords::cache_get(const MediaKey& key) {
  std::lock_guard lock(cache_mutex_);
  auto it = cache_index_.find(key);
  if (it == cache_index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return *it->second;
}

}  // namespace mxcd
