#include "media/scrubber.hpp"

#include "blob/blob_digest.hpp"
#include "core/blocking.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace mxcd {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kPage = 500;  // blob rows read from the metadata store at once
constexpr std::size_t kMaxPiece = 1 << 20;
constexpr auto kBurst = std::chrono::seconds(1);

}  // namespace

ScrubPace::ScrubPace(std::uint64_t bytes_per_second, Clock::time_point start)
    : bytes_per_second_(static_cast<double>(bytes_per_second)), paid_until_(start) {}

ScrubPace::Clock::duration ScrubPace::wait_after(std::uint64_t bytes, Clock::time_point now) {
  const Clock::time_point earliest = now - std::chrono::duration_cast<Clock::duration>(kBurst);
  const auto cost = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(static_cast<double>(bytes) / bytes_per_second_));
  paid_until_ = std::max(paid_until_, earliest) + cost;
  return std::max(paid_until_ - now, Clock::duration::zero());
}

struct Scrubber::Pass {
  explicit Pass(std::uint64_t bytes_per_second) : pace(bytes_per_second, ScrubPace::Clock::now()) {}
  ScrubPace pace;
  std::int64_t copies = 0;
  std::int64_t bytes = 0;
  std::int64_t damaged = 0;
};

Scrubber::Scrubber(const Config::Scrub& config, MetadataStore& metadata, BlobStores& stores,
                   asio::thread_pool& blocking_pool)
    : config_(config), metadata_(metadata), stores_(stores), blocking_pool_(blocking_pool) {}

void Scrubber::start(asio::io_context& io) {
  timer_ = std::make_unique<asio::steady_timer>(io);
  asio::co_spawn(io, run(), asio::detached);
}

void Scrubber::stop() {
  stopping_ = true;
  if (timer_) asio::post(timer_->get_executor(), [this] { timer_->cancel(); });
}

asio::awaitable<void> Scrubber::pause(std::chrono::steady_clock::duration duration) {
  if (stopping_) co_return;
  timer_->expires_after(duration);
  boost::system::error_code ignored;
  co_await timer_->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

asio::awaitable<void> Scrubber::run() {
  spdlog::info("scrub: checking local copies of stored blobs at up to {} bytes/s, every {} s",
               config_.bytes_per_second,
               std::chrono::duration_cast<std::chrono::seconds>(config_.interval).count());
  while (!stopping_) {
    const auto started = std::chrono::steady_clock::now();
    Pass pass(config_.bytes_per_second);
    co_await scrub_all(pass);
    if (stopping_) break;
    const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    const auto level = pass.damaged ? spdlog::level::err : spdlog::level::info;
    spdlog::log(level,
                "scrub: pass done in {:.1f} s: {} local copies checked ({} bytes), {} damaged",
                took.count(), pass.copies, pass.bytes, pass.damaged);
    co_await pause(config_.interval);
  }
}

asio::awaitable<void> Scrubber::scrub_all(Pass& pass) {
  std::string after;
  while (!stopping_) {
    auto page =
        co_await run_blocking(blocking_pool_, [&] { return metadata_.list_blobs(after, kPage); });
    if (!page) {
      spdlog::warn("scrub: cannot list blobs ({}); the pass ends here", page.error().message);
      co_return;
    }
    for (const auto& row : *page) {
      if (stopping_) co_return;
      // Nothing refers to it any more: the collector is about to delete it.
      if (row.unreferenced_since_ts) continue;
      if (BlobStore* store = stores_.find(row.store)) co_await scrub(row.blob, *store, pass);
    }
    if (page->size() < kPage) co_return;
    after = page->back().blob.name;
  }
}

asio::awaitable<void> Scrubber::scrub(const BlobId& blob, BlobStore& store, Pass& pass) {
  auto copy = store.open_local_copy(blob);
  if (!copy) co_return;
  const std::size_t piece_size = std::min<std::uint64_t>(kMaxPiece, config_.bytes_per_second);
  auto piece = std::make_unique<char[]>(piece_size);
  Digester digester;
  while (true) {
    auto read = co_await run_blocking(blocking_pool_, [&] {
      return digest_next_piece(copy->fd.get(), digester, {piece.get(), piece_size});
    });
    if (!read) {
      spdlog::error("scrub: cannot read {} (blob {} in store {}): {}", copy->path.string(),
                    blob.name, store.name(), read.error().message);
      co_return;
    }
    if (*read == 0) break;
    pass.bytes += static_cast<std::int64_t>(*read);
    auto wait = pass.pace.wait_after(*read, ScrubPace::Clock::now());
    if (wait > ScrubPace::Clock::duration::zero()) co_await pause(wait);
    if (stopping_) co_return;
  }
  ++pass.copies;
  BlobDigest found = digester.finish();
  if (found.sha256 == blob.name && found.size == blob.size) co_return;
  ++pass.damaged;
  spdlog::error("scrub: blob {} in store {} is damaged: {} holds {} bytes hashing to {}, not "
                "the {} bytes of its name",
                blob.name, store.name(), copy->path.string(), found.size, found.sha256, blob.size);
  co_await store.set_aside_damaged_copy(blob, *copy);
}

}  // namespace mxcd
