#include "media/thumbnail.hpp"

#include "core/blocking.hpp"
#include "core/clock.hpp"
#include "core/identifiers.hpp"
#include "core/wakeup.hpp"
#include "thumbnail/thumbnailer.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <unistd.h>

#include <utility>

namespace mxcd {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxRememberedFailures = 4096;

std::string flight_key(const ThumbnailKey& key) {
  return key.media.server_name + '/' + key.media.media_id + '/' + std::to_string(key.width) + 'x' +
         std::to_string(key.height) + (key.crop ? "/crop" : "/scale") +
         (key.animated ? "/animated" : "");
}

// Only these types can hold an animation (GIF, WebP; APNG is labelled image/png).
bool may_be_animated(std::string_view content_type) {
  return content_type == "image/gif" || content_type == "image/webp" ||
         content_type == "image/png" || content_type == "image/apng";
}

bool is_image(std::string_view content_type) { return content_type.starts_with("image/"); }

// A failure that the same bytes will always meet again, rather than a passing one.
bool lasting(const MatrixError& error) { return error.status == 400 || error.status == 413; }

// Failures come from the source (its format, size, corruption), whatever the box.
std::string failure_key(const MediaRecord& media, const ThumbnailKey& key) {
  return media.blob->name + (key.animated ? "/animated" : "");
}

}  // namespace

// One thumbnail being made; the requests that arrive meanwhile wait for its outcome.
struct ThumbnailPipeline::Flight {
  std::mutex mutex;
  std::optional<Result<ThumbnailRecord>> outcome;
  std::vector<std::shared_ptr<Wakeup>> waiters;

  void land(Result<ThumbnailRecord> result) {
    std::lock_guard lock(mutex);
    outcome = std::move(result);
    for (auto& waiter : waiters) Wakeup::wake(waiter);
  }

  asio::awaitable<Result<ThumbnailRecord>> wait() {
    auto waiter = std::make_shared<Wakeup>(co_await asio::this_coro::executor);
    {
      std::lock_guard lock(mutex);
      if (outcome) co_return *outcome;
      waiters.push_back(waiter);
    }
    while (true) {
      co_await waiter->wait(std::chrono::hours(1));  // land() ends it, however long it takes
      std::lock_guard lock(mutex);
      if (outcome) co_return *outcome;
    }
  }
};

ThumbnailPipeline::ThumbnailPipeline(const Config& config, BlobStores& stores,
                                     MediaRecords& records, DownloadPipeline& downloads,
                                     asio::thread_pool& blocking_pool)
    : config_(config),
      stores_(stores),
      records_(records),
      downloads_(downloads),
      blocking_pool_(blocking_pool),
      workers_(config.thumbnails.workers),
      worker_slots_(config.thumbnails.workers) {}

ThumbnailPipeline::~ThumbnailPipeline() { workers_.join(); }

asio::awaitable<Result<ThumbnailRecord>> ThumbnailPipeline::find(const ThumbnailRequest& request) {
  auto found = co_await downloads_.find(request.media);
  if (!found) co_return found.error();
  RecordPtr media = std::move(*found);
  if (!is_image(media->content_type)) {
    co_return MatrixError::bad_request("The media cannot be thumbnailed: it is not an image");
  }
  ThumbnailBox box =
      choose_thumbnail_box(config_.thumbnails, request.width, request.height, request.crop);
  ThumbnailKey key{media->key, box.width, box.height, box.crop,
                   request.animated && may_be_animated(media->content_type)};
  co_return co_await find_or_make(std::move(media), std::move(key));
}

asio::awaitable<Result<OpenBlob>> ThumbnailPipeline::open(const ThumbnailRecord& thumbnail) {
  BlobStore* store = stores_.find(thumbnail.store);
  if (!store) co_return MatrixError::unavailable("The thumbnail's store is not configured");
  const std::optional<ByteSpan> whole;  // named: see docs/development.md, GCC 12
  co_return co_await store->open(thumbnail.blob, whole);
}

void ThumbnailPipeline::made_upload(RecordPtr media, asio::any_io_executor executor) {
  if (!config_.thumbnails.generate_on_upload || !is_image(media->content_type)) return;
  if (queued_uploads_.fetch_add(1) >= config_.thumbnails.queue_limit) {
    queued_uploads_.fetch_sub(1);
    spdlog::warn("background thumbnails of {} skipped: {} uploads wait for a worker already "
                 "(thumbnails.queue_limit); they will be made when asked for",
                 mxc_uri(media->key.server_name, media->key.media_id),
                 config_.thumbnails.queue_limit);
    return;
  }
  asio::co_spawn(executor, make_configured(std::move(media)), asio::detached);
}

void ThumbnailPipeline::stop() {
  stopping_ = true;
  worker_slots_.close();
}

asio::awaitable<void> ThumbnailPipeline::make_configured(RecordPtr media) {
  // Queued until a worker is free: only the record is held meanwhile, not the source.
  struct Queued {
    std::atomic<std::size_t>& count;
    bool left = false;
    void leave() {
      if (!std::exchange(left, true)) count.fetch_sub(1);
    }
    ~Queued() { leave(); }
  } queued{queued_uploads_};
  Slots::Slot worker = co_await worker_slots_.acquire(Slots::Priority::background);
  queued.leave();
  if (!worker || stopping_) co_return;
  // Every configured size that is neither there nor being made already, from one decode.
  std::vector<ThumbnailKey> keys;
  std::vector<std::shared_ptr<Flight>> flights;
  for (const auto& size : config_.thumbnails.sizes) {
    ThumbnailKey key{media->key, size.width, size.height, size.crop, false};
    auto existing = co_await records_.find_thumbnail(key);
    if (!existing || *existing) continue;
    if (auto [flight, leader] = join_flight(key); leader) {
      keys.push_back(std::move(key));
      flights.push_back(std::move(flight));
    }
  }
  if (keys.empty()) co_return;
  auto made = co_await make(media, keys, worker);
  for (std::size_t i = 0; i < keys.size(); ++i) land(*media, keys[i], *flights[i], made[i]);
}

asio::awaitable<Result<ThumbnailRecord>> ThumbnailPipeline::find_or_make(RecordPtr media,
                                                                         ThumbnailKey key) {
  auto existing = co_await records_.find_thumbnail(key);
  if (!existing) co_return existing.error();
  if (*existing) co_return std::move(**existing);
  if (auto failure = remembered_failure(*media, key)) co_return *failure;
  auto [flight, leader] = join_flight(key);
  if (!leader) co_return co_await flight->wait();  // another request is making it
  std::vector<ThumbnailKey> keys{key};
  Slots::Slot worker = co_await worker_slots_.acquire(Slots::Priority::urgent);
  if (!worker) {
    auto stopping = MatrixError::unavailable("The server is stopping");
    land(*media, key, *flight, stopping);
    co_return stopping;
  }
  auto made = co_await make(media, keys, worker);
  land(*media, key, *flight, made.front());
  co_return std::move(made.front());
}

std::pair<std::shared_ptr<ThumbnailPipeline::Flight>, bool> ThumbnailPipeline::join_flight(
    const ThumbnailKey& key) {
  std::lock_guard lock(flights_mutex_);
  auto [it, inserted] = flights_.try_emplace(flight_key(key));
  if (inserted) it->second = std::make_shared<Flight>();
  return {it->second, inserted};
}

void ThumbnailPipeline::land(const MediaRecord& media, const ThumbnailKey& key, Flight& flight,
                             const Result<ThumbnailRecord>& made) {
  if (!made && lasting(made.error())) {
    std::lock_guard lock(failures_mutex_);
    if (failures_.size() >= kMaxRememberedFailures) failures_.clear();
    failures_.emplace(failure_key(media, key), made.error());
  }
  {
    std::lock_guard lock(flights_mutex_);
    flights_.erase(flight_key(key));
  }
  flight.land(made);
}

std::optional<MatrixError> ThumbnailPipeline::remembered_failure(const MediaRecord& media,
                                                                 const ThumbnailKey& key) {
  std::lock_guard lock(failures_mutex_);
  auto it = failures_.find(failure_key(media, key));
  if (it == failures_.end()) return std::nullopt;
  return it->second;
}

asio::awaitable<std::vector<Result<ThumbnailRecord>>> ThumbnailPipeline::make(
    RecordPtr media, const std::vector<ThumbnailKey>& keys, Slots::Slot& worker) {
  auto source = co_await read_source(*media);
  if (!source) co_return std::vector<Result<ThumbnailRecord>>(keys.size(), source.error());
  const auto& t = config_.thumbnails;
  thumbnail::Limits limits{.max_source_bytes = t.max_source_size,
                           .max_pixels = t.max_pixels,
                           .max_frames = t.max_frames,
                           .time_limit = t.time_limit};
  std::vector<thumbnail::Spec> specs;
  specs.reserve(keys.size());
  for (const auto& key : keys) {
    specs.push_back({key.width, key.height,
                     key.crop ? thumbnail::Method::crop : thumbnail::Method::scale, key.animated});
  }
  auto rendered = co_await run_blocking(workers_, [&] {
    // One key may be animated; several are the configured sizes, made from one decode.
    auto made = specs.size() == 1
                    ? std::vector<Result<thumbnail::Thumbnail>>{thumbnail::make_thumbnail(
                          *source, specs.front(), limits)}
                    : thumbnail::make_still_thumbnails(*source, specs, limits);
    // Decoding leaves freed memory in this thread's malloc arena; give it back now rather
    // than let every worker's arena keep its largest image.
    malloc_trim(0);
    return made;
  });
  *source = std::string();  // the source's memory goes before the thumbnails are stored
  worker.release();
  const std::string uri = mxc_uri(media->key.server_name, media->key.media_id);
  std::vector<Result<ThumbnailRecord>> results;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto& thumbnail = rendered[i];
    const ThumbnailKey& key = keys[i];
    if (!thumbnail) {
      spdlog::info("no thumbnail for {}: {}", uri, thumbnail.error().message);
      results.push_back(thumbnail.error());
      continue;
    }
    auto stored = co_await store(*media, key, std::move(thumbnail->bytes), thumbnail->content_type);
    if (stored) {
      spdlog::info("thumbnail generated {} {}x{} {}{} -> {}x{} {} ({} bytes)", uri, key.width,
                   key.height, key.crop ? "crop" : "scale", key.animated ? " animated" : "",
                   thumbnail->width, thumbnail->height, thumbnail->content_type, stored->blob.size);
    }
    results.push_back(std::move(stored));
  }
  co_return results;
}

asio::awaitable<Result<std::string>> ThumbnailPipeline::read_source(const MediaRecord& media) {
  const std::uint64_t size = media.blob->size;
  if (size > config_.thumbnails.max_source_size) {
    co_return MatrixError::too_large("The media is larger than the " +
                                     std::to_string(config_.thumbnails.max_source_size) +
                                     "-byte limit for thumbnailing");
  }
  const std::optional<ByteSpan> whole;  // named: see docs/development.md, GCC 12
  auto opened = co_await downloads_.open(media, whole);
  if (!opened) co_return opened.error();
  if (auto& growing = opened->growing) {
    // Coming in from object storage: wait for the last byte.
    while (growing->state() == GrowingFile::State::growing && growing->available() < size) {
      co_await growing->wait_beyond(growing->available());
    }
    if (growing->available() < size) {
      co_return MatrixError::unavailable("The media could not be fetched from storage");
    }
  }
  co_return co_await run_blocking(blocking_pool_, [&]() -> Result<std::string> {
    std::string bytes(size, '\0');
    std::size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(opened->fd.get(), bytes.data() + done, size - done,
                          static_cast<off_t>(done - opened->start));
      if (n <= 0) {
        spdlog::error("reading blob {} for a thumbnail failed", media.blob->name);
        return MatrixError::internal("Reading the media failed");
      }
      done += static_cast<std::size_t>(n);
    }
    return bytes;
  });
}

asio::awaitable<Result<ThumbnailRecord>> ThumbnailPipeline::store(const MediaRecord& media,
                                                                  ThumbnailKey key,
                                                                  std::string bytes,
                                                                  std::string content_type) {
  BlobStore& target = stores_.write_store(MediaKind::thumbnails);
  auto writer = target.begin_write(content_type);
  if (!writer) co_return writer.error();
  if (auto status = (*writer)->append(bytes.data(), bytes.size()); !status) {
    co_return status.error();
  }
  BlobId blob = (*writer)->finish();
  auto lease = co_await records_.commit_leased(**writer, blob, target.name());
  if (!lease) co_return lease.error();
  ThumbnailRecord record{std::move(key), std::move(blob), std::string(target.name()),
                         std::move(content_type), now_ms()};
  auto stored = co_await records_.insert_thumbnail(record, *lease);
  if (!stored) {
    records_.release_lease(*lease);
    co_return stored.error();
  }
  if (!*stored) {
    co_return MatrixError::not_found(mxc_uri(media.key.server_name, media.key.media_id) +
                                     " was deleted");
  }
  co_return std::move(**stored);
}

}  // namespace mxcd
