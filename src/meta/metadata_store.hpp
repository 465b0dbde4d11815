// The metadata seam: media records and the blobs they point at. SQLite is the embedded
// default; PostgreSQL implements the same interface for several instances.
// Calls block; pipelines make them from the blocking pool, never from a network thread.
#pragma once

#include "blob/blob_store.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mxcd {

struct MediaKey {
  std::string server_name;
  std::string media_id;
  bool operator==(const MediaKey&) const = default;
};

struct MediaKeyHash {
  std::size_t operator()(const MediaKey& key) const noexcept {
    return std::hash<std::string>()(key.server_name) * 31 + std::hash<std::string>()(key.media_id);
  }
};

struct MediaRecord {
  MediaKey key;
  std::optional<BlobId> blob;  // absent while an async upload waits for its bytes
  std::string store;           // the blob store holding the blob
  std::string content_type;
  std::optional<std::string> upload_name;
  std::string uploader;
  std::int64_t created_ts = 0;  // ms since the epoch, like every timestamp here
  std::optional<std::int64_t> last_access_ts;
  std::optional<std::int64_t> pending_expires_ts;  // set while pending
  bool quarantined = false;

  bool pending() const { return !blob.has_value(); }
};

struct AccessTime {
  MediaKey key;
  std::int64_t ts = 0;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  virtual Result<std::optional<MediaRecord>> find_media(const MediaKey& key) = 0;

  // Records a finished upload; its blob row is shared with identical uploads.
  virtual Status insert_media(const MediaRecord& record) = 0;

  // Reserves a media ID for an async upload, unless the uploader already holds
  // max_pending unexpired reservations.
  struct Reservation {
    bool reserved = false;
    std::int64_t oldest_expiry_ts = 0;  // when refused: when the next slot frees up
  };
  virtual Result<Reservation> reserve_pending(const MediaRecord& record, unsigned max_pending,
                                              std::int64_t now) = 0;

  // Gives a reserved media ID its bytes, checking ownership and expiry atomically.
  enum class FillOutcome { filled, not_found, forbidden, already_filled };
  virtual Result<FillOutcome> fill_pending(const MediaRecord& filled, std::int64_t now) = 0;

  virtual Status record_access(const std::vector<AccessTime>& accesses) = 0;
  // Returns how many expired, never-filled reservations were removed.
  virtual Result<int> delete_expired_pending(std::int64_t now) = 0;
  // Whether the database answers (for the health check).
  virtual Status ping() = 0;
};

}  // namespace mxcd
