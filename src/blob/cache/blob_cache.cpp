#include "blob/cache/blob_cache.hpp"

#include "blob/free_space.hpp"
#include "core/identifiers.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace mxcd {

namespace fs = std::filesystem;

BlobCache::BlobCache(fs::path root, std::uint64_t max_bytes,
                     const std::vector<std::string>& pinned_sha256s, StoreOpening opening)
    : root_(std::move(root)),
      blobs_dir_(blobs_dir(root_)),
      tmp_dir_(tmp_dir(root_)),
      max_bytes_(max_bytes) {
  const bool recover = opening == StoreOpening::recover;
  if (recover) {
    fs::create_directories(blobs_dir_);
    fs::create_directories(tmp_dir_);
    for (const auto& entry : fs::directory_iterator(tmp_dir_)) fs::remove_all(entry.path());
  } else if (!fs::exists(blobs_dir_)) {
    return;  // inspecting a cache never filled: it is empty
  }

  // Oldest first, so that the least recently filled blobs are the first to go.
  struct Found {
    std::string sha256;
    std::uint64_t size;
    fs::file_time_type time;
  };
  std::vector<Found> found;
  for (const auto& entry : fs::recursive_directory_iterator(blobs_dir_)) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    if (!is_blob_name(name) || entry.path() != path_of(name)) {
      if (!recover) continue;
      spdlog::warn("removing {}: not a cached blob", entry.path().string());
      std::error_code ignored;
      fs::remove(entry.path(), ignored);
      continue;
    }
    found.push_back({name, entry.file_size(), entry.last_write_time()});
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.time < b.time; });
  std::lock_guard lock(mutex_);
  for (auto& f : found) {
    lru_.push_back(f.sha256);
    entries_[f.sha256] = Entry{f.size, false, std::prev(lru_.end())};
    bytes_ += f.size;
  }
  for (const auto& sha256 : pinned_sha256s) {
    if (auto it = entries_.find(sha256); it != entries_.end()) it->second.pinned = true;
  }
  if (!recover) return;
  evict();
  spdlog::info("cache {}: {} blob(s), {} bytes of at most {}", root_.string(), entries_.size(),
               bytes_, max_bytes_);
}

fs::path BlobCache::path_of(const std::string& sha256) const {
  return blobs_dir_ / spread_blob_name(sha256);
}

UniqueFd BlobCache::open(const BlobId& blob) {
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(blob.name);
    if (it == entries_.end()) return {};
    touch(it->second);
  }
  UniqueFd fd(::open(path_of(blob.name).c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fd.valid() && ::fstat(fd.get(), &st) == 0 &&
      static_cast<std::uint64_t>(st.st_size) == blob.size) {
    return fd;
  }
  spdlog::warn("cached copy of blob {} is missing or damaged; fetching it again", blob.name);
  remove(blob.name);
  return {};
}

Result<std::pair<UniqueFd, fs::path>> BlobCache::create_temporary(const std::string& name) {
  fs::path path = tmp_dir_ / (name + "-" + generate_media_id());
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (!fd.valid()) {
    int error = errno;
    spdlog::error("cannot create {}: {}", path.string(), std::strerror(error));
    return write_error(error);
  }
  return std::pair{std::move(fd), std::move(path)};
}

Result<UniqueFd> BlobCache::create_anonymous() {
  UniqueFd fd(::open(tmp_dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    spdlog::error("cannot create a temporary file in {}: {}", tmp_dir_.string(),
                  std::strerror(errno));
    return MatrixError::internal("Could not use the local cache");
  }
  return fd;
}

Status BlobCache::publish(const BlobId& blob, const fs::path& file, bool pinned) {
  fs::path target = path_of(blob.name);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  // Renamed under the lock, so that remove_if_same() never unlinks a copy just published.
  std::unique_lock lock(mutex_);
  if (!ec) fs::rename(file, target, ec);
  if (ec) {
    lock.unlock();
    spdlog::error("cannot move {} into the cache: {}", file.string(), ec.message());
    fs::remove(file, ec);
    return MatrixError::internal("Could not use the local cache");
  }
  auto [it, inserted] = entries_.try_emplace(blob.name);
  Entry& entry = it->second;
  if (inserted) {
    lru_.push_back(blob.name);
    entry.position = std::prev(lru_.end());
  } else {
    bytes_ -= entry.size;
    touch(entry);
  }
  entry.size = blob.size;
  entry.pinned = entry.pinned || pinned;
  bytes_ += blob.size;
  evict();
  return {};
}

void BlobCache::unpin(const std::string& sha256) {
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(sha256); it != entries_.end()) it->second.pinned = false;
  evict();
}

bool BlobCache::pinned(const std::string& sha256) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(sha256);
  return it != entries_.end() && it->second.pinned;
}

void BlobCache::remove(const std::string& sha256) {
  std::lock_guard lock(mutex_);
  forget(sha256);
}

std::optional<LocalCopy> BlobCache::open_copy(const std::string& sha256) const {
  {
    std::lock_guard lock(mutex_);
    if (!entries_.contains(sha256)) return std::nullopt;
  }
  fs::path path = path_of(sha256);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  return LocalCopy{std::move(fd), std::move(path)};
}

bool BlobCache::remove_if_same(const std::string& sha256, const LocalCopy& copy) {
  std::lock_guard lock(mutex_);
  // A pinned copy is the only one until its upload: never dropped. publish() renames under
  // this lock too, so the file compared is the one that would go.
  if (auto it = entries_.find(sha256); it == entries_.end() || it->second.pinned) return false;
  if (!copy.still_in_place()) return false;
  forget(sha256);
  return true;
}

std::uint64_t BlobCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

std::size_t BlobCache::count() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void BlobCache::touch(Entry& entry) { lru_.splice(lru_.end(), lru_, entry.position); }

std::uint64_t BlobCache::release(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  const std::uint64_t before = bytes_;
  evict_down_to(bytes_ > bytes ? bytes_ - bytes : 0);
  return before - bytes_;
}

void BlobCache::evict_down_to(std::uint64_t target_bytes) {
  // Readers that have the file open keep reading it: unlinking only frees the name.
  auto it = lru_.begin();
  while (bytes_ > target_bytes && it != lru_.end()) {
    const std::string& sha256 = *it++;
    if (entries_.at(sha256).pinned) continue;
    forget(sha256);
  }
}

void BlobCache::forget(const std::string& sha256) {
  auto it = entries_.find(sha256);
  if (it == entries_.end()) return;
  // NOLINTNEXTLINE(performance-unnecessary-copy-initialization): sha256 may be the list node
  std::string name = sha256;  // that is about to go
  bytes_ -= it->second.size;
  lru_.erase(it->second.position);
  entries_.erase(it);
  std::error_code ignored;
  fs::remove(path_of(name), ignored);
}

}  // namespace mxcd
