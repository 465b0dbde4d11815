#include "blob/cache/blob_filler.hpp"

#include "blob/free_space.hpp"
#include "core/blocking.hpp"
#include "core/sha256.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mxcd {

namespace asio = boost::asio;
namespace fs = std::filesystem;

// One get from the source into a local file that clients read while it grows: the whole blob
// (filling the cache) or just a range (an anonymous file, dropped after use).
struct BlobFiller::Fetch final : BlobSink {
  BlobId blob;
  FillCheck check = FillCheck::sha256_of_name;
  std::function<void(const std::string&)> hashed;
  std::optional<ByteSpan> range;  // absent: the whole blob
  UniqueFd fd;
  fs::path path;  // whole-blob fetches: the temporary file to publish
  std::shared_ptr<GrowingFile> growing = std::make_shared<GrowingFile>();
  BlobHeaders answer;  // set before the first byte, read by readers only after it
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

  Status headers(const BlobHeaders& headers) override {
    answer = headers;
    return {};
  }

  asio::awaitable<Status> data(const char* bytes, std::size_t size) override {
    if (stopping->load()) co_return MatrixError::unavailable("The server is stopping");
    if (written + size > expected()) {
      co_return MatrixError::internal("The stored object is larger than the blob");
    }
    if (!write_all(fd.get(), bytes, size, written)) {
      spdlog::error("cannot write fetched blob {} to the cache: {}", blob.name,
                    std::strerror(errno));
      co_return MatrixError::internal("Could not use the local cache");
    }
    written += size;
    if (range) {
      growing->advance(written);
    } else {
      if (check != FillCheck::size_only) hash.update(bytes, size);
      // The last byte waits for the check: a client never receives a whole wrong blob.
      growing->advance(std::min(written, blob.size - 1));
    }
    co_return Status();
  }
};

BlobFiller::BlobFiller(BlobCache& cache, BlobSource& source, asio::thread_pool& blocking_pool)
    : cache_(cache), source_(source), blocking_pool_(blocking_pool) {}

BlobFiller::~BlobFiller() = default;

asio::awaitable<Result<FilledBlob>> BlobFiller::open(const FillRequest& request,
                                                     std::optional<ByteSpan> range) {
  const BlobId& blob = request.blob;
  if (blob.size == 0) {
    co_return FilledBlob{
        OpenBlob{UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), 0, 0, nullptr}, {}};
  }
  if (UniqueFd fd = cache_.open(blob); fd.valid()) {
    co_return FilledBlob{OpenBlob{std::move(fd), blob.size, 0, nullptr}, {}};
  }

  // A range from the start is a whole download that the client may cut short (a video
  // player's first request): fetch it all, into the cache.
  if (range && range->first == 0) range.reset();
  std::shared_ptr<Fetch> fetch;
  bool start = false;
  {
    std::lock_guard lock(fetches_mutex_);
    auto it = fetches_.find(blob.name);
    if (it != fetches_.end() && (!range || range->first <= it->second->growing->available())) {
      fetch = it->second;
      range.reset();
    } else {
      fetch = std::make_shared<Fetch>();
      fetch->blob = blob;
      fetch->check = request.check;
      fetch->range = range;
      fetch->stopping = &stopping_;
      if (!range) {
        fetch->hashed = request.hashed;
        auto file = cache_.create_temporary("fetch");
        if (!file) co_return file.error();
        fetch->fd = std::move(file->first);
        fetch->path = std::move(file->second);
        // Joined only when no other fetch of the blob is running (a ranged one may be).
        if (it == fetches_.end()) fetches_.emplace(blob.name, fetch);
      } else {
        auto file = cache_.create_anonymous();
        if (!file) co_return file.error();
        fetch->fd = std::move(*file);
      }
      start = true;
    }
  }
  if (start) asio::co_spawn(co_await asio::this_coro::executor, run_fetch(fetch), asio::detached);

  co_await fetch->growing->wait_beyond(0);
  if (fetch->growing->available() == 0 && fetch->growing->state() == GrowingFile::State::failed) {
    co_return fetch->error.value_or(MatrixError::unavailable("The media storage is unavailable"));
  }
  UniqueFd reader(::fcntl(fetch->fd.get(), F_DUPFD_CLOEXEC, 0));
  if (!reader.valid()) co_return MatrixError::internal("Could not open the file");
  co_return FilledBlob{
      OpenBlob{std::move(reader), blob.size, range ? range->first : 0, fetch->growing},
      fetch->answer};
}

asio::awaitable<void> BlobFiller::run_fetch(std::shared_ptr<Fetch> fetch) {
  const BlobId& blob = fetch->blob;
  const std::string key = source_.location(blob);
  Status status = co_await source_.get(blob, fetch->range, *fetch);
  if (status && fetch->written != fetch->expected()) {
    spdlog::error("object {} of blob {} in {} has {} bytes, {} expected", key, blob.name,
                  source_.describe(), fetch->written, fetch->expected());
    status = MatrixError::internal("The media's content is damaged");
  }
  if (status && !fetch->range && fetch->check != FillCheck::size_only) {
    std::string sha256 = fetch->hash.finish_hex();
    if (fetch->check == FillCheck::compute_sha256) {
      if (fetch->hashed) fetch->hashed(sha256);
    } else if (sha256 != blob.name) {
      spdlog::error("object {} of blob {} in {} does not match its name (its SHA-256 is {})", key,
                    blob.name, source_.describe(), sha256);
      status = MatrixError::internal("The media's content is damaged");
    }
  }
  if (status) fetch->growing->advance(fetch->written);
  if (!status) fetch->error = status.error();
  fetch->growing->finish(status.ok());

  if (!fetch->range) {
    bool synced = false;
    if (status) {
      synced = co_await run_blocking(blocking_pool_,
                                     [fd = fetch->fd.get()] { return ::fsync(fd) == 0; });
    }
    // Published under the lock, and only while still registered: remove() unregisters the
    // fetch of a blob it deletes, so deleted bytes never come back into the cache.
    std::lock_guard lock(fetches_mutex_);
    if (auto it = fetches_.find(blob.name); it != fetches_.end() && it->second == fetch) {
      fetches_.erase(it);
      if (synced && cache_.publish(blob, fetch->path, false)) fetch->path.clear();
    }
  }
}

void BlobFiller::remove(const std::string& name) {
  std::lock_guard lock(fetches_mutex_);
  fetches_.erase(name);  // a fill under way is served to its readers, not cached
  cache_.remove(name);
}

}  // namespace mxcd
