#include "blob/fs/fs_blob_store.hpp"

#include "blob/sha256.hpp"
#include "core/blocking.hpp"
#include "core/identifiers.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace mxcd {

namespace fs = std::filesystem;

namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool fsync_directory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.valid() && ::fsync(fd.get()) == 0;
}

class FsBlobWriter final : public BlobWriter {
 public:
  FsBlobWriter(const FsBlobStore& store, fs::path tmp_path, UniqueFd fd,
               boost::asio::thread_pool& pool)
      : store_(store), tmp_path_(std::move(tmp_path)), fd_(std::move(fd)), pool_(pool) {}

  ~FsBlobWriter() override {
    if (!committed_) {
      fd_.reset();
      std::error_code ignored;
      fs::remove(tmp_path_, ignored);
    }
  }

  Status append(const void* data, std::size_t size) override {
    hash_.update(data, size);
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      ssize_t n = ::write(fd_.get(), p, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        spdlog::error("blob write to {} failed: {}", tmp_path_.string(), std::strerror(errno));
        return MatrixError::internal("Could not store the file");
      }
      p += n;
      size -= static_cast<std::size_t>(n);
      size_ += static_cast<std::uint64_t>(n);
    }
    return {};
  }

  std::uint64_t size() const override { return size_; }

  BlobId finish() override {
    id_ = BlobId{hash_.finish_hex(), size_};
    return id_;
  }

  boost::asio::awaitable<Status> commit() override {
    const BlobId& id = id_;
    fs::path final_path = store_.blob_path(id.sha256);
    auto error = co_await run_blocking(pool_, [&]() -> std::string {
      struct stat existing {};
      if (::stat(final_path.c_str(), &existing) == 0 &&
          static_cast<std::uint64_t>(existing.st_size) == id.size) {
        return {};  // the same bytes are already stored: keep the one copy
      }
      if (::fsync(fd_.get()) != 0) return errno_text("fsync");
      std::error_code ec;
      fs::create_directories(final_path.parent_path(), ec);
      if (ec) return "create " + final_path.parent_path().string() + ": " + ec.message();
      if (::rename(tmp_path_.c_str(), final_path.c_str()) != 0) return errno_text("rename");
      // The rename is durable only once the directory entry is.
      if (!fsync_directory(final_path.parent_path())) return errno_text("fsync directory");
      return {};
    });
    if (!error.empty()) {
      spdlog::error("storing blob {} failed: {}", id.sha256, error);
      co_return MatrixError::internal("Could not store the file");
    }
    fd_.reset();
    std::error_code ignored;
    fs::remove(tmp_path_, ignored);  // still there when the blob already existed
    committed_ = true;
    co_return Status();
  }

 private:
  const FsBlobStore& store_;
  fs::path tmp_path_;
  UniqueFd fd_;
  boost::asio::thread_pool& pool_;
  Sha256 hash_;
  std::uint64_t size_ = 0;
  BlobId id_;
  bool committed_ = false;
};

}  // namespace

FsBlobStore::FsBlobStore(std::string name, fs::path root, boost::asio::thread_pool& blocking_pool)
    : name_(std::move(name)), root_(std::move(root)), blobs_dir_(root_ / "blobs"), tmp_dir_(root_ / "tmp"),
      blocking_pool_(blocking_pool) {
  fs::create_directories(blobs_dir_);
  fs::create_directories(tmp_dir_);
  blobs_dir_fd_.reset(::open(blobs_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!blobs_dir_fd_.valid()) {
    throw fs::filesystem_error("cannot open", blobs_dir_, std::error_code(errno, std::generic_category()));
  }
  std::size_t removed = 0;
  for (const auto& entry : fs::directory_iterator(tmp_dir_)) {
    fs::remove_all(entry.path());
    ++removed;
  }
  if (removed > 0) spdlog::info("removed {} unfinished upload(s) left in {}", removed, tmp_dir_.string());
}

fs::path FsBlobStore::blob_path(const std::string& sha256) const {
  return blobs_dir_ / sha256.substr(0, 2) / sha256.substr(2, 2) / sha256;
}

Result<std::unique_ptr<BlobWriter>> FsBlobStore::begin_write(const std::string& /*content_type*/) {
  fs::path tmp_path = tmp_dir_ / ("upload-" + generate_media_id());
  UniqueFd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (!fd.valid()) {
    spdlog::error("cannot create {}: {}", tmp_path.string(), std::strerror(errno));
    return MatrixError::internal("Could not store the file");
  }
  return std::unique_ptr<BlobWriter>(
      std::make_unique<FsBlobWriter>(*this, std::move(tmp_path), std::move(fd), blocking_pool_));
}

Status FsBlobStore::check_name(const BlobId& blob) const {
  if (!blob.location.empty()) {
    // Only S3 stores adopt objects in place: serving <sha256> instead could be other bytes.
    spdlog::error("blob {} is recorded at location {} in store {}, which keeps blobs by their "
                  "hash only; it cannot be served or removed", blob.sha256, blob.location, name_);
    return MatrixError::internal("The media's content is in an unsupported place");
  }
  if (!is_sha256_hex(blob.sha256)) {
    spdlog::error("blob {} in store {} is not named by its hash", blob.sha256, name_);
    return MatrixError::internal("Invalid blob name");
  }
  return {};
}

boost::asio::awaitable<Result<OpenBlob>> FsBlobStore::open(const BlobId& blob,
                                                          std::optional<ByteSpan> /*range*/) {
  if (auto valid = check_name(blob); !valid) co_return valid.error();
  // A local open() is a page-cache lookup; it is not worth a trip to the blocking pool.
  // Relative to the blobs directory's descriptor: no path to build on every download.
  char relative[72];
  std::snprintf(relative, sizeof relative, "%.2s/%.2s/%s", blob.sha256.c_str(),
                blob.sha256.c_str() + 2, blob.sha256.c_str());
  UniqueFd fd(::openat(blobs_dir_fd_.get(), relative, O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    spdlog::error("blob {} is missing from {}: {}", blob.sha256, blobs_dir_.string(),
                  std::strerror(errno));
    co_return MatrixError::not_found("The media's content is missing");
  }
  if (static_cast<std::uint64_t>(st.st_size) != blob.size) {
    spdlog::error("blob {} has {} bytes on disk, {} recorded", blob.sha256, st.st_size, blob.size);
    co_return MatrixError::internal("The media's content is damaged");
  }
  co_return OpenBlob{std::move(fd), blob.size, 0, nullptr};
}

boost::asio::awaitable<Status> FsBlobStore::remove(const BlobId& blob) {
  if (auto valid = check_name(blob); !valid) co_return valid;
  fs::path path = blob_path(blob.sha256);
  auto error = co_await run_blocking(blocking_pool_, [&]() -> std::string {
    if (::unlink(path.c_str()) != 0) return errno == ENOENT ? "" : errno_text("unlink");
    // Like a write, a removal is done only once the directory entry is durable.
    if (!fsync_directory(path.parent_path())) return errno_text("fsync directory");
    return {};
  });
  if (!error.empty()) {
    spdlog::error("removing blob {} failed: {}", blob.sha256, error);
    co_return MatrixError::internal("Could not remove the file");
  }
  co_return Status();
}

Status FsBlobStore::check_writable() {
  if (::access(tmp_dir_.c_str(), W_OK) != 0 || ::access(blobs_dir_.c_str(), W_OK) != 0) {
    return MatrixError::unavailable("storage directory not writable: " + root_.string());
  }
  return {};
}

}  // namespace mxcd
