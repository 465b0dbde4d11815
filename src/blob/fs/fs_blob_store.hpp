// Blobs as files on a local filesystem: <root>/blobs/<aa>/<bb>/<sha256> (blob/blob_names.hpp).
// Only hashed blobs without a location: a blob adopted in place is refused, never served
// from another file.
// A blob is written to <root>/tmp, fsynced, and renamed into place, so a reader never sees
// a partial blob and a crash leaves at most a temporary file, which start-up removes.
// A new upload of bytes already stored replaces the file (its bytes were hashed on the way
// in; the file there may have rotted). A blob the scrubber finds damaged is moved aside to
// <root>/damaged/<sha256>: it is no longer served (404), `mxcd verify` reports it, and the
// next upload of the same bytes puts a good copy back and removes the damaged one.
#pragma once

#include "blob/blob_store.hpp"

#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <mutex>

namespace mxcd {

class FsBlobStore final : public BlobStore {
 public:
  // Creates the directories and (recover) removes temporary files left by an earlier crash.
  // Throws std::filesystem::filesystem_error when the root cannot be used.
  FsBlobStore(std::string name, std::filesystem::path root, boost::asio::thread_pool& blocking_pool,
              StoreOpening opening = StoreOpening::recover);

  std::string_view name() const override { return name_; }
  Result<std::unique_ptr<BlobWriter>> begin_write(const std::string& content_type) override;
  // Always opens the whole file: a range costs nothing extra locally.
  boost::asio::awaitable<Result<OpenBlob>> open(const BlobId& blob,
                                                std::optional<ByteSpan> range) override;
  boost::asio::awaitable<Status> remove(const BlobId& blob) override;
  Status check_writable() override;
  boost::asio::awaitable<Result<BlobDigest>> digest(const BlobId& blob) override;
  std::string describe_location(const BlobId& blob) const override;
  std::optional<LocalCopy> open_local_copy(const BlobId& blob) override;
  boost::asio::awaitable<void> set_aside_damaged_copy(const BlobId& blob,
                                                      const LocalCopy& copy) override;

  std::filesystem::path blob_path(const std::string& sha256) const;
  std::filesystem::path damaged_path(const std::string& sha256) const;

 private:
  class Writer;
  // Renames a complete, fsynced file into the blob's place and drops a damaged copy set
  // aside before. Blocks; returns what went wrong, or an empty string.
  std::string place(const std::filesystem::path& file, const std::string& sha256);

  // 500, logged, for a blob this store cannot hold: one with a location or an unhashed one.
  Status check_name(const BlobId& blob) const;

  std::string name_;
  std::filesystem::path root_;
  std::filesystem::path blobs_dir_;
  std::filesystem::path tmp_dir_;
  std::filesystem::path damaged_dir_;
  UniqueFd blobs_dir_fd_;
  // Orders renames into blobs/ (uploads) and out of it (setting a damaged file aside).
  std::mutex placing_mutex_;
  boost::asio::thread_pool& blocking_pool_;
};

}  // namespace mxcd
