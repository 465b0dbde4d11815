// Blobs as files on a local filesystem: <root>/blobs/<aa>/<bb>/<sha256>. Only hashed blobs
// without a location: a blob adopted in place is refused, never served from another file.
// A blob is written to <root>/tmp, fsynced, and renamed into place, so a reader never sees
// a partial blob and a crash leaves at most a temporary file, which start-up removes.
#pragma once

#include "blob/blob_store.hpp"

#include <boost/asio/thread_pool.hpp>

#include <filesystem>

namespace mxcd {

class FsBlobStore final : public BlobStore {
 public:
  // Creates the directories and removes temporary files left by an earlier crash.
  // Throws std::filesystem::filesystem_error when the root cannot be used.
  FsBlobStore(std::string name, std::filesystem::path root, boost::asio::thread_pool& blocking_pool);

  std::string_view name() const override { return name_; }
  Result<std::unique_ptr<BlobWriter>> begin_write(const std::string& content_type) override;
  // Always opens the whole file: a range costs nothing extra locally.
  boost::asio::awaitable<Result<OpenBlob>> open(const BlobId& blob,
                                                std::optional<ByteSpan> range) override;
  boost::asio::awaitable<Status> remove(const BlobId& blob) override;
  Status check_writable() override;

  std::filesystem::path blob_path(const std::string& sha256) const;

 private:
  // 500, logged, for a blob this store cannot hold: one with a location or an unhashed one.
  Status check_name(const BlobId& blob) const;

  std::string name_;
  std::filesystem::path root_;
  std::filesystem::path blobs_dir_;
  std::filesystem::path tmp_dir_;
  UniqueFd blobs_dir_fd_;
  boost::asio::thread_pool& blocking_pool_;
};

}  // namespace mxcd
