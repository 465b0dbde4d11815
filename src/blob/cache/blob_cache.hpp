// A bounded local copy of blobs that live in a remote store, served like local files:
// <root>/blobs/<aa>/<bb>/<name> (blob/blob_names.hpp), least recently used out first once the
// total passes the configured size. A file appears under blobs/ only when complete (filled in
// <root>/tmp, fsynced and renamed), so after a crash or restart the cache is rebuilt by listing it.
// Pinned blobs (uploads still queued for the remote store) are never evicted.
#pragma once

#include "blob/blob_store.hpp"

#include <filesystem>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace mxcd {

class BlobCache {
 public:
  // Removes unfinished fills and indexes the blobs already there, oldest first, pinning the
  // queued ones; evicts down to max_bytes. Inspecting, it only indexes. Throws
  // std::filesystem::filesystem_error when root cannot be used.
  BlobCache(std::filesystem::path root, std::uint64_t max_bytes,
            const std::vector<std::string>& pinned_sha256s,
            StoreOpening opening = StoreOpening::recover);

  // The cached copy, or an invalid descriptor on a miss. A copy of the wrong size (damaged)
  // is dropped and counts as a miss.
  UniqueFd open(const BlobId& blob);

  // A new file for fetching a blob into: <root>/tmp/<name>. Its path is for publish().
  Result<std::pair<UniqueFd, std::filesystem::path>> create_temporary(const std::string& name);
  // An anonymous file for bytes that are not kept (a fetched range).
  Result<UniqueFd> create_anonymous();
  // Moves a complete file into the cache. The caller has fsynced it.
  Status publish(const BlobId& blob, const std::filesystem::path& file, bool pinned);
  void unpin(const std::string& sha256);
  bool pinned(const std::string& sha256) const;
  void remove(const std::string& sha256);
  // Evicts unpinned copies, least recently used first, until at least `bytes` are freed or
  // none is left; returns the bytes freed. For a disk that is full before the cache is.
  std::uint64_t release(std::uint64_t bytes);

  // The cached copy for the scrubber, without counting as a use; nullopt on a miss.
  std::optional<LocalCopy> open_copy(const std::string& sha256) const;
  // Drops the cached copy if it is still the file `copy` refers to (not a fresh fill or
  // upload that replaced it meanwhile) and not pinned. Returns whether it did.
  bool remove_if_same(const std::string& sha256, const LocalCopy& copy);

  std::filesystem::path path_of(const std::string& sha256) const;
  std::uint64_t bytes() const;
  std::size_t count() const;
  const std::filesystem::path& root() const { return root_; }

 private:
  struct Entry {
    std::uint64_t size = 0;
    bool pinned = false;
    std::list<std::string>::iterator position;  // in lru_
  };
  void touch(Entry& entry);                        // mutex_ held
  void evict() { evict_down_to(max_bytes_); }      // mutex_ held
  void evict_down_to(std::uint64_t target_bytes);  // mutex_ held
  void forget(const std::string& sha256);          // mutex_ held

  std::filesystem::path root_;
  std::filesystem::path blobs_dir_;
  std::filesystem::path tmp_dir_;
  std::uint64_t max_bytes_;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // front: least recently used
  std::uint64_t bytes_ = 0;
};

}  // namespace mxcd
