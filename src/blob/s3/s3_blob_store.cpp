#include "blob/s3/s3_blob_store.hpp"

#include "blob/free_space.hpp"
#include "core/sha256.hpp"
#include "core/blocking.hpp"
#include "core/clock.hpp"
#include "s3/sigv4.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mxcd {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

constexpr auto kFirstQueueRetry = std::chrono::seconds(1);
constexpr auto kMaxQueueRetry = std::chrono::minutes(1);
// How often the store looks for multipart uploads that were never finished.
constexpr auto kStaleUploadSweepInterval = std::chrono::hours(24);

}  // namespace

// --- upload ---

class S3BlobStore::Writer final : public BlobWriter {
 public:
  Writer(S3BlobStore& store, UniqueFd fd, fs::path path, std::string content_type)
      : store_(store),
        fd_(std::move(fd)),
        path_(std::move(path)),
        content_type_(std::move(content_type)) {}

  ~Writer() override {
    if (!path_.empty()) {
      std::error_code ignored;
      fs::remove(path_, ignored);
    }
  }

  Status append(const void* data, std::size_t size) override {
    hash_.update(data, size);
    if (!write_all(fd_.get(), static_cast<const char*>(data), size, size_)) {
      int error = errno;
      spdlog::error("spool write to {} failed: {}", path_.string(), std::strerror(error));
      return write_error(error);
    }
    size_ += size;
    return {};
  }

  std::uint64_t size() const override { return size_; }

  BlobId finish() override {
    blob_ = BlobId{hash_.finish_hex(), size_};
    return blob_;
  }

  asio::awaitable<Status> commit() override {
    if (store_.config_.durability == S3StoreConfig::Durability::background) {
      // Acknowledged once on local disk: the bytes and the queue entry must survive a crash.
      int sync_error = co_await run_blocking(
          store_.blocking_pool_, [fd = fd_.get()] { return ::fsync(fd) == 0 ? 0 : errno; });
      if (sync_error != 0) {
        spdlog::error("fsync of {} failed: {}", path_.string(), std::strerror(sync_error));
        co_return write_error(sync_error);
      }
      if (auto status = store_.cache_.publish(blob_, path_, true); !status) co_return status;
      path_.clear();
      co_return store_.queue_upload(blob_, content_type_);
    }
    auto stored = co_await store_.bucket_.put(fd_.get(), blob_, content_type_);
    if (!stored) co_return stored;
    // The fresh upload is the likeliest next download: keep it as the cached copy.
    if (store_.cache_.publish(blob_, path_, false)) path_.clear();
    co_return Status();
  }

 private:
  S3BlobStore& store_;
  UniqueFd fd_;
  fs::path path_;  // empty once handed to the cache
  std::string content_type_;
  Sha256 hash_;
  std::uint64_t size_ = 0;
  BlobId blob_;
};

// --- download ---

S3BlobStore::S3BlobStore(const StoreConfig& config, const fs::path& storage_root,
                         asio::thread_pool& blocking_pool, StoreOpening opening)
    : name_(config.name),
      config_(config.s3),
      blocking_pool_(blocking_pool),
      client_(config.s3, blocking_pool),
      bucket_(client_, config.s3.prefix),
      queue_(queue_dir(storage_root, config.name), opening),
      cache_(cache_root(storage_root, config.name), config.s3.cache_size, queue_.sha256s(),
             opening),
      filler_(cache_, bucket_, blocking_pool) {
  if (opening == StoreOpening::inspect) return;
  for (auto& entry : queue_.list()) {
    if (!cache_.pinned(entry.sha256)) {
      spdlog::error("store {}: queued blob {} has no local copy left, so it cannot reach {}; "
                    "media referring to it cannot be served",
                    name_, entry.sha256, client_.describe());
      queue_.remove(entry.sha256);
      continue;
    }
    pending_.push_back(std::move(entry));
  }
  if (!pending_.empty()) {
    spdlog::info("store {}: {} blob(s) still to upload to {}", name_, pending_.size(),
                 client_.describe());
  }
}

S3BlobStore::~S3BlobStore() = default;

std::optional<std::string> S3BlobStore::check_bucket() {
  asio::io_context context;
  s3::Client::AccessCheck check;
  asio::co_spawn(context, client_.check_access(),
                 [&](std::exception_ptr error, s3::Client::AccessCheck c) {
                   if (error) c.problem = "the bucket check failed";
                   check = std::move(c);
                 });
  context.run();
  if (!check.reachable) {
    spdlog::warn("store {}: {} cannot be reached ({}); serving from the cache until it can", name_,
                 client_.describe(), check.problem);
    return std::nullopt;
  }
  if (!check.problem.empty()) return "store " + name_ + ": " + check.problem;
  spdlog::info("store {}: {} answers", name_, client_.describe());
  return std::nullopt;
}

Result<std::unique_ptr<BlobWriter>> S3BlobStore::begin_write(const std::string& content_type) {
  auto file = cache_.create_temporary("upload");
  if (!file) return file.error();
  return std::unique_ptr<BlobWriter>(std::make_unique<Writer>(
      *this, std::move(file->first), std::move(file->second), content_type));
}

asio::awaitable<Result<OpenBlob>> S3BlobStore::open(const BlobId& blob,
                                                    std::optional<ByteSpan> range) {
  if (is_unhashed(blob) && blob.location.empty()) {
    spdlog::error("unhashed blob {} has no location in store {}", blob.name, name_);
    co_return MatrixError::internal("The media's content cannot be found");
  }
  // An unhashed blob's name says nothing of its bytes: only its size can be checked.
  const FillRequest request{blob,
                            is_unhashed(blob) ? FillCheck::size_only : FillCheck::sha256_of_name};
  auto filled = co_await filler_.open(request, range);
  if (!filled) co_return std::move(filled).error();
  co_return std::move(filled->blob);
}

std::optional<std::string> S3BlobStore::redirect_url(const BlobId& blob,
                                                     const RedirectHeaders& headers) const {
  using Redirect = S3StoreConfig::Redirect;
  // A blob still waiting in the upload queue is only here.
  if (config_.redirect == Redirect::off || cache_.pinned(blob.name)) return std::nullopt;
  const std::string key = bucket_.location(blob);
  if (config_.redirect == Redirect::presigned) {
    return client_.presigned_get_url(key, config_.presigned_ttl,
                                     {headers.content_type, headers.content_disposition});
  }
  // Anonymous requests may not ask for response header overrides: the CDN or the bucket
  // serves the Content-Type stored with the object. An adopted object's key may hold any
  // character, so it is encoded as a signed request's path would be.
  return config_.public_base_url + "/" + s3::uri_encode(key, true);
}

asio::awaitable<Status> S3BlobStore::remove(const BlobId& blob) {
  {
    std::lock_guard lock(queue_mutex_);
    // Deleting the object now would race the upload's PUT; the next attempt finds it done.
    if (uploading_ == blob.name) co_return MatrixError::unavailable("The blob is being uploaded");
    std::erase_if(pending_, [&](const QueuedBlob& q) { return q.sha256 == blob.name; });
  }
  queue_.remove(blob.name);
  filler_.remove(blob.name);
  co_return co_await bucket_.remove(blob);
}

Status S3BlobStore::check_writable() {
  if (::access(cache_.root().c_str(), W_OK) != 0) {
    return MatrixError::unavailable("cache directory not writable: " + cache_.root().string());
  }
  return {};
}

// --- checking stored bytes ---

namespace {

class DigestSink final : public BlobSink {
 public:
  asio::awaitable<Status> data(const char* bytes, std::size_t size) override {
    digester.update(bytes, size);
    co_return Status();
  }
  Digester digester;
};

}  // namespace

asio::awaitable<Result<BlobDigest>> S3BlobStore::digest(const BlobId& blob) {
  if (cache_.pinned(blob.name)) {
    // Still in the upload queue: the bucket has no object yet.
    if (auto copy = cache_.open_copy(blob.name)) {
      co_return co_await run_blocking(blocking_pool_, [&] { return digest_file(copy->fd.get()); });
    }
  }
  DigestSink sink;
  auto status = co_await read(blob, sink);
  if (!status) co_return status.error();
  co_return sink.digester.finish();
}

asio::awaitable<Status> S3BlobStore::read(const BlobId& blob, BlobSink& sink) {
  const std::optional<ByteSpan> whole;
  co_return co_await bucket_.get(blob, whole, sink);
}

asio::awaitable<Result<std::optional<BlobId>>> S3BlobStore::find_adoptable(
    const std::string& location) {
  BlobId blob{unhashed_blob_id(name_, location), 0, location};
  auto object = co_await bucket_.head(blob);
  if (!object) co_return object.error();
  if (!*object) co_return std::optional<BlobId>();
  blob.size = (*object)->size;
  co_return std::optional<BlobId>(std::move(blob));
}

std::string S3BlobStore::describe_location(const BlobId& blob) const {
  if (cache_.pinned(blob.name)) return cache_.path_of(blob.name).string() + " (queued for upload)";
  return "s3://" + client_.config().bucket + "/" + bucket_.location(blob);
}

std::optional<LocalCopy> S3BlobStore::open_local_copy(const BlobId& blob) {
  // An unhashed blob's name says nothing of its bytes.
  if (is_unhashed(blob)) return std::nullopt;
  return cache_.open_copy(blob.name);
}

asio::awaitable<void> S3BlobStore::set_aside_damaged_copy(const BlobId& blob,
                                                          const LocalCopy& copy) {
  if (cache_.remove_if_same(blob.name, copy)) {
    spdlog::error("store {}: the damaged cached copy {} of blob {} is dropped; the next read "
                  "fetches it again from {}",
                  name_, copy.path.string(), blob.name, bucket_.describe());
  } else if (cache_.pinned(blob.name)) {
    spdlog::error("store {}: the damaged copy {} of blob {} waits for upload and is its only "
                  "copy, so it stays; an upload of the same file replaces it",
                  name_, copy.path.string(), blob.name);
  } else {
    spdlog::info("store {}: the cached copy of blob {} was replaced or dropped while it was "
                 "checked",
                 name_, blob.name);
  }
  co_return;
}

// --- the upload queue (durability: background) ---

Status S3BlobStore::queue_upload(const BlobId& blob, const std::string& content_type) {
  QueuedBlob entry{blob.name, content_type, now_ms()};
  if (auto status = queue_.add(entry); !status) return status;
  std::size_t waiting;
  {
    std::lock_guard lock(queue_mutex_);
    pending_.push_back(std::move(entry));
    waiting = pending_.size();
  }
  spdlog::info("store {}: blob {} queued for upload ({} waiting)", name_, blob.name, waiting);
  wake_queue();
  return {};
}

void S3BlobStore::wake_queue() {
  std::lock_guard lock(queue_mutex_);
  if (queue_timer_) {
    asio::post(queue_timer_->get_executor(), [this] { queue_timer_->cancel(); });
  }
}

void S3BlobStore::start(asio::io_context& context) {
  {
    std::lock_guard lock(queue_mutex_);
    queue_timer_ = std::make_unique<asio::steady_timer>(context);
  }
  asio::co_spawn(context, drain_queue(), asio::detached);
  sweep_timer_ = std::make_unique<asio::steady_timer>(context);
  asio::co_spawn(context, sweep_stale_uploads(), asio::detached);
}

void S3BlobStore::stop() {
  stopping_ = true;
  filler_.stop();
  wake_queue();
  if (sweep_timer_) asio::post(sweep_timer_->get_executor(), [this] { sweep_timer_->cancel(); });
}

bool S3BlobStore::is_own_object_key(std::string_view key) const {
  auto slash = key.rfind('/');
  std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  return is_sha256_hex(name) && key == object_key(config_.prefix, name);
}

asio::awaitable<void> S3BlobStore::sweep_stale_uploads() {
  while (!stopping_) {
    auto uploads = co_await client_.list_multipart_uploads(config_.prefix);
    if (!uploads) {
      spdlog::warn("store {}: cannot list unfinished multipart uploads: {}", name_,
                   uploads.error().message);
    } else {
      const auto cutoff = std::chrono::system_clock::now() - config_.stale_multipart_age;
      unsigned aborted = 0;
      for (const auto& upload : *uploads) {
        // Only this store's own blob keys: a bucket may be shared with other software.
        if (stopping_ || upload.initiated > cutoff || !is_own_object_key(upload.key)) continue;
        if (auto status = co_await client_.abort_multipart_upload(upload.key, upload.upload_id)) {
          ++aborted;
        } else {
          spdlog::warn("store {}: cannot abort the unfinished upload of {}: {}", name_, upload.key,
                       status.error().message);
        }
      }
      if (aborted > 0) {
        spdlog::info(
            "store {}: aborted {} multipart upload(s) left unfinished for over {} s", name_,
            aborted,
            std::chrono::duration_cast<std::chrono::seconds>(config_.stale_multipart_age).count());
      }
    }
    if (stopping_) break;
    sweep_timer_->expires_after(kStaleUploadSweepInterval);
    boost::system::error_code ignored;
    co_await sweep_timer_->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

asio::awaitable<void> S3BlobStore::drain_queue() {
  unsigned failures = 0;
  while (!stopping_) {
    std::optional<QueuedBlob> next;
    {
      std::lock_guard lock(queue_mutex_);
      if (!pending_.empty()) {
        next = pending_.front();
        uploading_ = next->sha256;
      }
    }
    std::optional<std::chrono::steady_clock::duration> delay;  // absent: until woken
    if (next) {
      UniqueFd fd(::open(cache_.path_of(next->sha256).c_str(), O_RDONLY | O_CLOEXEC));
      struct stat st {};
      Status status;
      if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
        spdlog::error("store {}: queued blob {} lost its local copy; it cannot be uploaded", name_,
                      next->sha256);
      } else {
        BlobId blob{next->sha256, static_cast<std::uint64_t>(st.st_size)};
        status = co_await bucket_.put(fd.get(), blob, next->content_type);
      }
      std::size_t waiting;
      {
        std::lock_guard lock(queue_mutex_);
        uploading_.clear();
        std::erase_if(pending_, [&](const QueuedBlob& q) { return q.sha256 == next->sha256; });
        if (!status) pending_.push_back(*next);  // try the others first, then again
        waiting = pending_.size();
      }
      if (status) {
        queue_.remove(next->sha256);
        cache_.unpin(next->sha256);
        failures = 0;
        spdlog::info("store {}: queued blob {} uploaded ({} waiting)", name_, next->sha256,
                     waiting);
        continue;
      }
      ++failures;
      delay = std::min<std::chrono::steady_clock::duration>(
          kFirstQueueRetry * (1 << std::min(failures, 6U)), kMaxQueueRetry);
      spdlog::warn("store {}: queued blob {} not uploaded yet ({} waiting); next try in {} s",
                   name_, next->sha256, waiting,
                   std::chrono::duration_cast<std::chrono::seconds>(*delay).count());
    }
    if (delay) queue_timer_->expires_after(*delay);
    else queue_timer_->expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ignored;
    co_await queue_timer_->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

}  // namespace mxcd
