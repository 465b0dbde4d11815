#include "media/blob_collector.hpp"

#include "core/blocking.hpp"
#include "core/clock.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace mxcd {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kBatchSize = 100;
// A claim older than this belongs to a process that died while deleting: removing a blob
// takes seconds even with every retry of an unreachable bucket.
constexpr std::chrono::milliseconds kReclaimAfter = std::chrono::hours(1);

}  // namespace

BlobCollector::BlobCollector(MetadataStore& metadata, BlobStores& stores,
                             asio::thread_pool& blocking_pool)
    : metadata_(metadata), stores_(stores), blocking_pool_(blocking_pool) {}

void BlobCollector::start(asio::io_context& io, std::chrono::milliseconds interval) {
  timer_ = std::make_unique<asio::steady_timer>(io);
  asio::co_spawn(io, run(interval), asio::detached);
}

void BlobCollector::wake() {
  woken_ = true;
  if (timer_) asio::post(timer_->get_executor(), [this] { timer_->cancel(); });
}

void BlobCollector::stop() {
  stopping_ = true;
  wake();
}

asio::awaitable<void> BlobCollector::run(std::chrono::milliseconds interval) {
  while (!stopping_) {
    woken_ = false;
    while (!stopping_) {
      auto batch = co_await run_blocking(blocking_pool_, [this] {
        std::int64_t now = now_ms();
        return metadata_.claim_unreferenced_blobs(now, now - kReclaimAfter.count(), kBatchSize);
      });
      if (!batch) break;  // logged by the store; next round
      bool all_deleted = co_await delete_batch(*batch);
      if (!all_deleted || batch->size() < kBatchSize) break;
    }
    if (woken_ || stopping_) continue;
    timer_->expires_after(interval);
    boost::system::error_code ignored;
    co_await timer_->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

asio::awaitable<bool> BlobCollector::delete_batch(
    const std::vector<MetadataStore::DoomedBlob>& batch) {
  bool all_deleted = true;
  for (const auto& doomed : batch) {
    BlobStore* store = stores_.find(doomed.store);
    Status removed = MatrixError::internal("the store is not configured");
    if (store) removed = co_await store->remove(doomed.blob);
    Status recorded = co_await run_blocking(blocking_pool_, [&] {
      return removed ? metadata_.finish_blob_deletion(doomed.blob.name)
                     : metadata_.abandon_blob_deletion(doomed.blob.name);
    });
    if (removed && recorded) {
      spdlog::info("deleted blob {} ({} bytes) from store {}: no media refers to it",
                   doomed.blob.name, doomed.blob.size, doomed.store);
    } else if (!removed) {
      all_deleted = false;
      spdlog::warn("could not delete blob {} from store {} (will retry): {}", doomed.blob.name,
                   doomed.store, removed.error().message);
    }
  }
  co_return all_deleted;
}

}  // namespace mxcd
