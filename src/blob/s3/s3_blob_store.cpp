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

// On failure errno says why (ENOSPC for a write of nothing).
bool write_all(int fd, const char* data, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = ENOSPC;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

}  // namespace

// --- upload ---

class S3BlobStore::Writer final : public BlobWriter {
 public:
  Writer(S3BlobStore& store, UniqueFd fd, fs::path path, std::string content_type)
      : store_(store), fd_(std::move(fd)), path_(std::move(path)),
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
      int sync_error = co_await run_blocking(store_.blocking_pool_, [fd = fd_.get()] {
        return ::fsync(fd) == 0 ? 0 : errno;
      });
      if (sync_error != 0) {
        spdlog::error("fsync of {} failed: {}", path_.string(), std::strerror(sync_error));
        co_return write_error(sync_error);
      }
      if (auto status = store_.cache_.publish(blob_, path_, true); !status) co_return status;
      path_.clear();
      co_return store_.queue_upload(blob_, content_type_);
    }
    auto stored = co_await store_.store_object(fd_.get(), blob_, content_type_);
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

// One GetObject into a local file that clients read while it grows: the whole blob (filling
// the cache) or just a range (an anonymous file, dropped after use).
struct S3BlobStore::Fetch final : s3::ObjectSink {
  BlobId blob;
  std::optional<ByteSpan> range;  // absent: the whole blob
  UniqueFd fd;
  fs::path path;  // whole-blob fetches: the temporary file to publish
  std::shared_ptr<GrowingFile> growing = std::make_shared<GrowingFile>();
  Sha256 hash;
  std::uint64_t written = 0;
  std::optional<MatrixError> error;
  const std::atomic<bool>* stopping = nullptr;

  ~Fetch() override {
    if (!path.empty()) {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  }

  std::uint64_t expected() const { return range ? range->length() : blob.size; }

  asio::awaitable<Status> data(const char* bytes, std::size_t size) override {
    if (stopping->load()) co_return MatrixError::unavailable("The server is stopping");
    if (written + size > expected()) {
      co_return MatrixError::internal("The stored object is larger than the blob");
    }
    if (!write_all(fd.get(), bytes, size, written)) {
      spdlog::error("cannot write fetched blob {} to the cache: {}", blob.sha256, std::strerror(errno));
      co_return MatrixError::internal("Could not use the local cache");
    }
    written += size;
    if (range) {
      growing->advance(written);
    } else {
      if (!is_unhashed(blob)) hash.update(bytes, size);
      // The last byte waits for the hash check (the size check, for an unhashed blob): a
      // client never receives a whole wrong blob.
      growing->advance(std::min(written, blob.size - 1));
    }
    co_return Status();
  }
};

S3BlobStore::S3BlobStore(const StoreConfig& config, const fs::path& storage_root,
                         asio::thread_pool& blocking_pool, StoreOpening opening)
    : name_(config.name), config_(config.s3), blocking_pool_(blocking_pool),
      client_(config.s3, blocking_pool), queue_(queue_dir(storage_root, config.name)),
      cache_(cache_root(storage_root, config.name), config.s3.cache_size, queue_.sha256s(),
             opening) {
  if (opening == StoreOpening::inspect) return;
  for (auto& entry : queue_.list()) {
    if (!cache_.pinned(entry.sha256)) {
      spdlog::error("store {}: queued blob {} has no local copy left, so it cannot reach {}; "
                    "media referring to it cannot be served", name_, entry.sha256, client_.describe());
      queue_.remove(entry.sha256);
      continue;
    }
    pending_.push_back(std::move(entry));
  }
  if (!pending_.empty()) {
    spdlog::info("store {}: {} blob(s) still to upload to {}", name_, pending_.size(), client_.describe());
  }
}

S3BlobStore::~S3BlobStore() = default;

std::string S3BlobStore::object_key(const BlobId& blob) const {
  if (!blob.location.empty()) return blob.location;
  return mxcd::object_key(config_.prefix, blob.sha256);
}

std::optional<std::string> S3BlobStore::check_bucket() {
  asio::io_context context;
  s3::Client::AccessCheck check;
  asio::co_spawn(context, client_.check_access(), [&](std::exception_ptr error, s3::Client::AccessCheck c) {
    if (error) c.problem = "the bucket check failed";
    check = std::move(c);
  });
  context.run();
  if (!check.reachable) {
    spdlog::warn("store {}: {} cannot be reached ({}); serving from the cache until it can",
                 name_, client_.describe(), check.problem);
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

asio::awaitable<Status> S3BlobStore::store_object(int fd, const BlobId& blob,
                                                  const std::string& content_type) {
  const std::string key = object_key(blob);
  auto existing = co_await client_.head_object(key);
  if (!existing) co_return existing.error();
  if (*existing && (*existing)->size == blob.size) co_return Status();  // content-addressed
  const s3::FileRegion body{fd, 0, blob.size};  // named: GCC 12 and braced temporaries in co_await
  co_return co_await client_.put_file(key, body, blob.sha256, content_type);
}

asio::awaitable<Result<OpenBlob>> S3BlobStore::open(const BlobId& blob,
                                                    std::optional<ByteSpan> range) {
  if (is_unhashed(blob) && blob.location.empty()) {
    spdlog::error("unhashed blob {} has no location in store {}", blob.sha256, name_);
    co_return MatrixError::internal("The media's content cannot be found");
  }
  if (blob.size == 0) co_return OpenBlob{UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), 0, 0, nullptr};
  if (UniqueFd fd = cache_.open(blob); fd.valid()) co_return OpenBlob{std::move(fd), blob.size, 0, nullptr};

  // A range from the start is a whole download that the client may cut short (a video
  // player's first request): fetch it all, into the cache.
  if (range && range->first == 0) range.reset();
  std::shared_ptr<Fetch> fetch;
  bool start = false;
  {
    std::lock_guard lock(fetches_mutex_);
    auto it = fetches_.find(blob.sha256);
    if (it != fetches_.end() && (!range || range->first <= it->second->growing->available())) {
      fetch = it->second;
      range.reset();
    } else {
      fetch = std::make_shared<Fetch>();
      fetch->blob = blob;
      fetch->range = range;
      fetch->stopping = &stopping_;
      if (!range) {
        auto file = cache_.create_temporary("fetch");
        if (!file) co_return file.error();
        fetch->fd = std::move(file->first);
        fetch->path = std::move(file->second);
        // Joined only when no other fetch of the blob is running (a ranged one may be).
        if (it == fetches_.end()) fetches_.emplace(blob.sha256, fetch);
      } else {
        auto file = cache_.create_anonymous();
        if (!file) co_return file.error();
        fetch->fd = std::move(*file);
      }
      start = true;
    }
  }
  if (start) asio::co_spawn(co_await asio::this_coro::executor, run_fetch(fetch), asio::detached);

  // Wait for the first bytes, so that a missing object or an unreachable bucket is still an
  // error response and not a broken 200.
  co_await fetch->growing->wait_beyond(0);
  if (fetch->growing->available() == 0 && fetch->growing->state() == GrowingFile::State::failed) {
    co_return fetch->error.value_or(MatrixError::unavailable("The media storage is unavailable"));
  }
  UniqueFd reader(::fcntl(fetch->fd.get(), F_DUPFD_CLOEXEC, 0));
  if (!reader.valid()) co_return MatrixError::internal("Could not open the file");
  co_return OpenBlob{std::move(reader), blob.size, range ? range->first : 0, fetch->growing};
}

asio::awaitable<void> S3BlobStore::run_fetch(std::shared_ptr<Fetch> fetch) {
  const BlobId& blob = fetch->blob;
  const std::string key = object_key(blob);
  Status status = co_await client_.get_object(key, fetch->range, *fetch);
  if (status && fetch->written != fetch->expected()) {
    spdlog::error("object {} of blob {} in {} has {} bytes, {} expected", key, blob.sha256,
                  client_.describe(), fetch->written, fetch->expected());
    status = MatrixError::internal("The media's content is damaged");
  }
  // An unhashed blob's name says nothing of its bytes: only its size can be checked.
  if (status && !fetch->range && !is_unhashed(blob)) {
    if (std::string sha256 = fetch->hash.finish_hex(); sha256 != blob.sha256) {
      spdlog::error("object {} of blob {} in {} does not match its name (its SHA-256 is {})",
                    key, blob.sha256, client_.describe(), sha256);
      status = MatrixError::internal("The media's content is damaged");
    }
  }
  if (status) fetch->growing->advance(fetch->written);
  if (!status) fetch->error = status.error();
  fetch->growing->finish(status.ok());

  if (!fetch->range) {
    bool synced = false;
    if (status) {
      synced = co_await run_blocking(blocking_pool_, [fd = fetch->fd.get()] { return ::fsync(fd) == 0; });
    }
    // Published under the lock, and only while still registered: remove() unregisters the
    // fetch of a blob it deletes, so deleted bytes never come back into the cache.
    std::lock_guard lock(fetches_mutex_);
    if (auto it = fetches_.find(blob.sha256); it != fetches_.end() && it->second == fetch) {
      fetches_.erase(it);
      if (synced && cache_.publish(blob, fetch->path, false)) fetch->path.clear();
    }
  }
}

std::optional<std::string> S3BlobStore::redirect_url(const BlobId& blob,
                                                     const RedirectHeaders& headers) const {
  using Redirect = S3StoreConfig::Redirect;
  // A blob still waiting in the upload queue is only here.
  if (config_.redirect == Redirect::off || cache_.pinned(blob.sha256)) return std::nullopt;
  const std::string key = object_key(blob);
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
    if (uploading_ == blob.sha256) co_return MatrixError::unavailable("The blob is being uploaded");
    std::erase_if(pending_, [&](const QueuedBlob& q) { return q.sha256 == blob.sha256; });
  }
  queue_.remove(blob.sha256);
  {
    std::lock_guard lock(fetches_mutex_);
    fetches_.erase(blob.sha256);  // a fill under way is served to its readers, not cached
    cache_.remove(blob.sha256);
  }
  co_return co_await client_.delete_object(object_key(blob));
}

Status S3BlobStore::check_writable() {
  if (::access(cache_.root().c_str(), W_OK) != 0) {
    return MatrixError::unavailable("cache directory not writable: " + cache_.root().string());
  }
  return {};
}

// --- checking stored bytes ---

namespace {

class DigestSink final : public s3::ObjectSink {
 public:
  asio::awaitable<Status> data(const char* bytes, std::size_t size) override {
    digester.update(bytes, size);
    co_return Status();
  }
  Digester digester;
};

}  // namespace

asio::awaitable<Result<BlobDigest>> S3BlobStore::digest(const BlobId& blob) {
  if (cache_.pinned(blob.sha256)) {
    // Still in the upload queue: the bucket has no object yet.
    if (auto copy = cache_.open_copy(blob.sha256)) {
      co_return co_await run_blocking(blocking_pool_, [&] { return digest_file(copy->fd.get()); });
    }
  }
  DigestSink sink;
  const std::optional<ByteSpan> whole;
  auto status = co_await client_.get_object(object_key(blob), whole, sink);
  if (!status) co_return status.error();
  co_return sink.digester.finish();
}

std::string S3BlobStore::describe_location(const BlobId& blob) const {
  if (cache_.pinned(blob.sha256)) return cache_.path_of(blob.sha256).string() + " (queued for upload)";
  return "s3://" + client_.config().bucket + "/" + object_key(blob);
}

std::optional<LocalCopy> S3BlobStore::open_local_copy(const BlobId& blob) {
  // An unhashed blob's name says nothing of its bytes.
  if (is_unhashed(blob)) return std::nullopt;
  return cache_.open_copy(blob.sha256);
}

asio::awaitable<void> S3BlobStore::set_aside_damaged_copy(const BlobId& blob, const LocalCopy& copy) {
  if (cache_.remove_if_same(blob.sha256, copy)) {
    spdlog::error("store {}: the damaged cached copy {} of blob {} is dropped; the next read "
                  "fetches it again from {}", name_, copy.path.string(), blob.sha256,
                  client_.describe());
  } else if (cache_.pinned(blob.sha256)) {
    spdlog::error("store {}: the damaged copy {} of blob {} waits for upload and is its only "
                  "copy, so it stays; an upload of the same file replaces it", name_,
                  copy.path.string(), blob.sha256);
  } else {
    spdlog::info("store {}: the cached copy of blob {} was replaced or dropped while it was "
                 "checked", name_, blob.sha256);
  }
  co_return;
}

// --- the upload queue (durability: background) ---

Status S3BlobStore::queue_upload(const BlobId& blob, const std::string& content_type) {
  QueuedBlob entry{blob.sha256, content_type, now_ms()};
  if (auto status = queue_.add(entry); !status) return status;
  std::size_t waiting;
  {
    std::lock_guard lock(queue_mutex_);
    pending_.push_back(std::move(entry));
    waiting = pending_.size();
  }
  spdlog::info("store {}: blob {} queued for upload ({} waiting)", name_, blob.sha256, waiting);
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
  wake_queue();
  if (sweep_timer_) asio::post(sweep_timer_->get_executor(), [this] { sweep_timer_->cancel(); });
}

bool S3BlobStore::is_own_object_key(std::string_view key) const {
  auto slash = key.rfind('/');
  std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  return is_sha256_hex(name) && key == object_key(BlobId{std::string(name)});
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
          spdlog::warn("store {}: cannot abort the unfinished upload of {}: {}", name_,
                       upload.key, status.error().message);
        }
      }
      if (aborted > 0) {
        spdlog::info("store {}: aborted {} multipart upload(s) left unfinished for over {} s",
                     name_, aborted,
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
        spdlog::error("store {}: queued blob {} lost its local copy; it cannot be uploaded",
                      name_, next->sha256);
      } else {
        BlobId blob{next->sha256, static_cast<std::uint64_t>(st.st_size)};
        status = co_await store_object(fd.get(), blob, next->content_type);
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
        spdlog::info("store {}: queued blob {} uploaded ({} waiting)", name_, next->sha256, waiting);
        continue;
      }
      ++failures;
      delay = std::min<std::chrono::steady_clock::duration>(kFirstQueueRetry * (1 << std::min(failures, 6U)),
                                                            kMaxQueueRetry);
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
