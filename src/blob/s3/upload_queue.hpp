// Blobs acknowledged to clients but not yet in the bucket (durability: background), kept as
// one small file per blob in <storage>/queue/<store>/<sha256> holding the Content-Type to
// upload it with. An entry is fsynced before the upload is acknowledged and removed only
// after the object is in the bucket, so a crash or an outage loses nothing: the next start
// finds the entries again. The bytes themselves wait, pinned, in the store's cache.
#pragma once

#include "blob/blob_store.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mxcd {

struct QueuedBlob {
  std::string sha256;
  std::string content_type;
  std::int64_t queued_ts = 0;  // ms since the epoch
};

class UploadQueue {
 public:
  // Creates the directory unless only inspecting (a queue never used is empty). Throws
  // std::filesystem::filesystem_error when the directory cannot be used.
  explicit UploadQueue(std::filesystem::path dir, StoreOpening opening = StoreOpening::recover);

  Status add(const QueuedBlob& blob);
  void remove(const std::string& sha256);
  // Every entry on disk, oldest first.
  std::vector<QueuedBlob> list() const;
  std::vector<std::string> sha256s() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace mxcd
