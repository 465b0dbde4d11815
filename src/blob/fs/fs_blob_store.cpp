#include "blob/fs/fs_blob_store.hpp"

#include "blob/free_space.hpp"
#include "core/sha256.hpp"
#include "core/blocking.hpp"
#include "core/identifiers.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mxcd {

namespace fs = std::filesystem;

namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool fsync_directory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.valid() && ::fsync(fd.get()) == 0;
}

}  // namespace

class FsBlobStore::Writer final : public BlobWriter {
 public:
  Writer(FsBlobStore& store, fs::path tmp_path, UniqueFd fd, boost::asio::thread_pool& pool)
      : store_(store), tmp_path_(std::move(tmp_path)), fd_(std::move(fd)), pool_(pool) {}

  ~Writer() override {
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
        int error = n == 0 ? ENOSPC : errno;  // a write of nothing is a full disk
        spdlog::error("blob write to {} failed: {}", tmp_path_.string(), std::strerror(error));
        return write_error(error);
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
    int error_number = 0;
    auto error = co_await run_blocking(pool_, [&]() -> std::string {
      // The new bytes take the blob's place even when a file of that name is there already:
      // they were hashed on their way in, while that file may have been damaged since it
      // was written. This is also how a damaged blob is repaired.
      std::string failed =
          ::fsync(fd_.get()) != 0 ? errno_text("fsync") : store_.place(tmp_path_, id.name);
      error_number = errno;
      return failed;
    });
    if (!error.empty()) {
      spdlog::error("storing blob {} failed: {}", id.name, error);
      co_return write_error(error_number);
    }
    fd_.reset();
    committed_ = true;
    co_return Status();
  }

 private:
  FsBlobStore& store_;
  fs::path tmp_path_;
  UniqueFd fd_;
  boost::asio::thread_pool& pool_;
  Sha256 hash_;
  std::uint64_t size_ = 0;
  BlobId id_;
  bool committed_ = false;
};

FsBlobStore::FsBlobStore(std::string name, fs::path root, boost::asio::thread_pool& blocking_pool,
                         StoreOpening opening)
    : name_(std::move(name)),
      root_(std::move(root)),
      blobs_dir_(blobs_dir(root_)),
      tmp_dir_(tmp_dir(root_)),
      damaged_dir_(damaged_dir(root_)),
      blocking_pool_(blocking_pool) {
  if (opening == StoreOpening::recover) {
    fs::create_directories(blobs_dir_);
    fs::create_directories(tmp_dir_);
  }
  blobs_dir_fd_.reset(::open(blobs_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (opening == StoreOpening::inspect) return;  // a store never written to holds no blobs
  if (!blobs_dir_fd_.valid()) {
    throw fs::filesystem_error("cannot open", blobs_dir_,
                               std::error_code(errno, std::generic_category()));
  }
  std::size_t removed = 0;
  for (const auto& entry : fs::directory_iterator(tmp_dir_)) {
    fs::remove_all(entry.path());
    ++removed;
  }
  if (removed > 0)
    spdlog::info("removed {} unfinished upload(s) left in {}", removed, tmp_dir_.string());
}

fs::path FsBlobStore::blob_path(const std::string& sha256) const {
  return blobs_dir_ / spread_blob_name(sha256);
}

fs::path FsBlobStore::damaged_path(const std::string& sha256) const {
  return damaged_dir_ / sha256;
}

std::string FsBlobStore::place(const fs::path& file, const std::string& sha256) {
  fs::path final_path = blob_path(sha256);
  std::error_code ec;
  fs::create_directories(final_path.parent_path(), ec);
  if (ec) return "create " + final_path.parent_path().string() + ": " + ec.message();
  {
    std::lock_guard lock(placing_mutex_);
    if (::rename(file.c_str(), final_path.c_str()) != 0) return errno_text("rename");
  }
  // The rename is durable only once the directory entry is.
  if (!fsync_directory(final_path.parent_path())) return errno_text("fsync directory");
  fs::path damaged = damaged_path(sha256);
  if (::unlink(damaged.c_str()) == 0) {
    spdlog::info("blob {} is repaired: an upload brought its bytes again; its damaged copy {} "
                 "is removed",
                 sha256, damaged.string());
  }
  return {};
}

Result<std::unique_ptr<BlobWriter>> FsBlobStore::begin_write(const std::string& /*content_type*/) {
  fs::path tmp_path = tmp_dir_ / ("upload-" + generate_media_id());
  UniqueFd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (!fd.valid()) {
    int error = errno;
    spdlog::error("cannot create {}: {}", tmp_path.string(), std::strerror(error));
    return write_error(error);
  }
  return std::unique_ptr<BlobWriter>(
      std::make_unique<Writer>(*this, std::move(tmp_path), std::move(fd), blocking_pool_));
}

Status FsBlobStore::check_name(const BlobId& blob) const {
  if (!blob.location.empty()) {
    // Only S3 stores adopt objects in place: serving <sha256> instead could be other bytes.
    spdlog::error("blob {} is recorded at location {} in store {}, which keeps blobs by their "
                  "hash only; it cannot be served or removed",
                  blob.name, blob.location, name_);
    return MatrixError::internal("The media's content is in an unsupported place");
  }
  if (!is_sha256_hex(blob.name)) {
    spdlog::error("blob {} in store {} is not named by its hash", blob.name, name_);
    return MatrixError::internal("Invalid blob name");
  }
  return {};
}

boost::asio::awaitable<Result<OpenBlob>> FsBlobStore::open(const BlobId& blob,
                                                           std::optional<ByteSpan> /*range*/) {
  if (auto valid = check_name(blob); !valid) co_return valid.error();
  // A local open() is a page-cache lookup; it is not worth a trip to the blocking pool.
  // Relative to the blobs directory's descriptor: no whole path to build on every download.
  const std::string relative = spread_blob_name(blob.name);
  UniqueFd fd(::openat(blobs_dir_fd_.get(), relative.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    const int error = errno;
    // Only on this failure path: a served blob costs no look-up here.
    if (fs::path damaged = damaged_path(blob.name); ::access(damaged.c_str(), F_OK) == 0) {
      spdlog::error("blob {} was found damaged and set aside as {}; media referring to it is "
                    "served again once an upload brings the same file",
                    blob.name, damaged.string());
      co_return MatrixError::not_found("The media's content is damaged");
    }
    spdlog::error("blob {} is missing from {}: {}", blob.name, blobs_dir_.string(),
                  std::strerror(error));
    co_return MatrixError::not_found("The media's content is missing");
  }
  if (static_cast<std::uint64_t>(st.st_size) != blob.size) {
    spdlog::error("blob {} has {} bytes on disk, {} recorded", blob.name, st.st_size, blob.size);
    co_return MatrixError::internal("The media's content is damaged");
  }
  co_return OpenBlob{std::move(fd), blob.size, 0, nullptr};
}

boost::asio::awaitable<Status> FsBlobStore::remove(const BlobId& blob) {
  if (auto valid = check_name(blob); !valid) co_return valid;
  fs::path path = blob_path(blob.name);
  auto error = co_await run_blocking(blocking_pool_, [&]() -> std::string {
    ::unlink(damaged_path(blob.name).c_str());  // a damaged copy set aside goes too
    if (::unlink(path.c_str()) != 0) return errno == ENOENT ? "" : errno_text("unlink");
    // Like a write, a removal is done only once the directory entry is durable.
    if (!fsync_directory(path.parent_path())) return errno_text("fsync directory");
    return {};
  });
  if (!error.empty()) {
    spdlog::error("removing blob {} failed: {}", blob.name, error);
    co_return MatrixError::internal("Could not remove the file");
  }
  co_return Status();
}

boost::asio::awaitable<Result<BlobDigest>> FsBlobStore::digest(const BlobId& blob) {
  if (auto valid = check_name(blob); !valid) co_return valid.error();
  co_return co_await run_blocking(blocking_pool_, [&]() -> Result<BlobDigest> {
    UniqueFd fd(::open(blob_path(blob.name).c_str(), O_RDONLY | O_CLOEXEC));
    // A blob set aside as damaged still has bytes here: they are what is checked.
    if (!fd.valid() && errno == ENOENT) {
      fd.reset(::open(damaged_path(blob.name).c_str(), O_RDONLY | O_CLOEXEC));
    }
    if (!fd.valid()) {
      if (errno == ENOENT) return MatrixError::not_found("The media's content is missing");
      return MatrixError::internal(errno_text("open"));
    }
    return digest_file(fd.get());
  });
}

std::string FsBlobStore::describe_location(const BlobId& blob) const {
  if (!is_blob_name(blob.name)) return blob.name;
  fs::path damaged = damaged_path(blob.name);
  std::string where = blob_path(blob.name).string();
  if (::access(damaged.c_str(), F_OK) == 0) where += " (set aside as " + damaged.string() + ")";
  return where;
}

std::optional<LocalCopy> FsBlobStore::open_local_copy(const BlobId& blob) {
  if (!blob.location.empty() || !is_sha256_hex(blob.name)) return std::nullopt;
  fs::path path = blob_path(blob.name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;  // missing: reported when it is asked for
  return LocalCopy{std::move(fd), std::move(path)};
}

boost::asio::awaitable<void> FsBlobStore::set_aside_damaged_copy(const BlobId& blob,
                                                                 const LocalCopy& copy) {
  const fs::path damaged = damaged_path(blob.name);
  enum class Outcome { set_aside, replaced, failed };
  std::string error;
  Outcome outcome = co_await run_blocking(blocking_pool_, [&] {
    std::error_code ec;
    fs::create_directories(damaged_dir_, ec);
    if (ec) {
      error = "create " + damaged_dir_.string() + ": " + ec.message();
      return Outcome::failed;
    }
    {
      // Under the lock that uploads take to put a blob in place: the file moved is the one
      // that was hashed, never an upload's fresh copy.
      std::lock_guard lock(placing_mutex_);
      if (!copy.still_in_place()) return Outcome::replaced;
      if (::rename(copy.path.c_str(), damaged.c_str()) != 0) {
        error = errno_text("rename");
        return Outcome::failed;
      }
    }
    if (!fsync_directory(copy.path.parent_path()) || !fsync_directory(damaged_dir_)) {
      error = errno_text("fsync directory");
      return Outcome::failed;
    }
    return Outcome::set_aside;
  });
  switch (outcome) {
    case Outcome::set_aside:
      spdlog::error("blob {}: the damaged file {} is set aside as {} and no longer served; an "
                    "upload of the same file replaces it",
                    blob.name, copy.path.string(), damaged.string());
      break;
    case Outcome::replaced:
      spdlog::info("blob {}: {} was replaced by an upload while it was checked; the new file "
                   "stays",
                   blob.name, copy.path.string());
      break;
    case Outcome::failed:
      spdlog::error("blob {}: the damaged file {} cannot be set aside: {}", blob.name,
                    copy.path.string(), error);
      break;
  }
}

Status FsBlobStore::check_writable() {
  if (::access(tmp_dir_.c_str(), W_OK) != 0 || ::access(blobs_dir_.c_str(), W_OK) != 0) {
    return MatrixError::unavailable("storage directory not writable: " + root_.string());
  }
  return {};
}

}  // namespace mxcd
