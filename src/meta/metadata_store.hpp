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

// A thumbnail is named by its media and the box it was made for (after size snapping, so
// the variants per media stay few), not by the size of the image that came out.
struct ThumbnailKey {
  MediaKey media;
  unsigned width = 0;
  unsigned height = 0;
  bool crop = false;  // else scale
  bool animated = false;
  bool operator==(const ThumbnailKey&) const = default;
};

struct ThumbnailRecord {
  ThumbnailKey key;
  BlobId blob;
  std::string store;
  std::string content_type;
  std::int64_t created_ts = 0;
};

struct AccessTime {
  MediaKey key;
  std::int64_t ts = 0;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  virtual Result<std::optional<MediaRecord>> find_media(const MediaKey& key) = 0;

  // Records a finished upload; its blob row is shared with identical uploads. `lease` is
  // the blob's lease, taken before its bytes were stored, and consumed here: 503 when it
  // expired meanwhile, because the bytes may then be gone.
  virtual Status insert_media(const MediaRecord& record, std::int64_t lease) = 0;

  // Reserves a media ID for an async upload, unless the uploader already holds
  // max_pending unexpired reservations.
  struct Reservation {
    bool reserved = false;
    std::int64_t oldest_expiry_ts = 0;  // when refused: when the next slot frees up
  };
  virtual Result<Reservation> reserve_pending(const MediaRecord& record, unsigned max_pending,
                                              std::int64_t now) = 0;

  // Gives a reserved media ID its bytes, checking ownership and expiry atomically. The
  // lease is consumed as by insert_media.
  enum class FillOutcome { filled, not_found, forbidden, already_filled };
  virtual Result<FillOutcome> fill_pending(const MediaRecord& filled, std::int64_t lease,
                                           std::int64_t now) = 0;

  virtual Result<std::optional<ThumbnailRecord>> find_thumbnail(const ThumbnailKey& key) = 0;
  // Records a generated thumbnail, consuming its blob's lease as insert_media does. Adds
  // nothing when the media is gone or finished meanwhile or the thumbnail is already
  // recorded (another instance made it too); returns the record that is there, if any.
  virtual Result<std::optional<ThumbnailRecord>> insert_thumbnail(const ThumbnailRecord& record,
                                                                  std::int64_t lease) = 0;

  // Removes a record (finished or pending) and its thumbnails. Blobs no longer referred to
  // become candidates for deletion. Returns whether there was such a record.
  virtual Result<bool> delete_media(const MediaKey& key, std::int64_t now) = 0;

  // --- Blob deletion, safe against a concurrent upload of the same bytes ---
  // An upload leases its blob before storing the bytes (the store may find them already
  // there and skip writing) and hands the lease to insert_media. A blob is deleted only
  // when no record refers to it and no live lease holds it, and it is claimed for deletion
  // in the same transaction that checks this, so an upload either keeps the blob alive or
  // waits for its deletion to end and then stores the bytes again.

  // Bytes an upload is about to store under their own name (content-addressed) in `store`.
  struct BlobToStore {
    BlobId blob;
    std::string store;
    std::int64_t now = 0;
  };
  // A lease on the blob until expires_ts, or nullopt while the blob is being deleted (ask
  // again shortly). With `storing`, a blob no row names yet gets one that nothing refers
  // to: should the upload never record it (a crash between storing and recording), the
  // collector deletes its bytes once the lease has expired. Without (a blob adopted in
  // place, whose object mxcd did not write), no row is added.
  virtual Result<std::optional<std::int64_t>> lease_blob(
      const std::string& sha256, std::int64_t expires_ts,
      const std::optional<BlobToStore>& storing) = 0;
  // Gives up a lease that insert_media will not consume (the upload failed).
  virtual Status release_lease(std::int64_t lease) = 0;

  struct DoomedBlob {
    BlobId blob;
    std::string store;
  };
  // Claims up to `limit` blobs for deletion: unreferenced and unleased ones, and ones whose
  // deletion was claimed before reclaim_before_ts and never finished (a crashed instance).
  // Expired leases are dropped first.
  virtual Result<std::vector<DoomedBlob>> claim_unreferenced_blobs(std::int64_t now,
                                                                   std::int64_t reclaim_before_ts,
                                                                   std::size_t limit) = 0;
  // The blob's bytes are gone from its store: forget it.
  virtual Status finish_blob_deletion(const std::string& sha256) = 0;
  // The store could not remove the bytes: leave the blob for a later claim, and let uploads
  // lease it again meanwhile.
  virtual Status abandon_blob_deletion(const std::string& sha256) = 0;

  // --- Blobs adopted in place (mxcd import synapse) ---
  enum class BlobReplacement {
    replaced,   // the blob is now named hashed.name, its bytes still at its location
    merged,     // hashed.name was already stored: its records now use that blob, and the
                // old one is left to the collector, which deletes its object as usual
    not_found,  // no blob old_id, or it is being deleted (nothing refers to it any more)
  };
  // Renames blob old_id (usually an unhashed one) to the content hash its bytes turned out
  // to have, in one transaction: every media record and thumbnail moves to hashed.name.
  // A new row keeps the old row's size, store, location and timestamps; hashed.size and
  // hashed.location are not used. 503 while a blob hashed.name is being deleted (ask again
  // shortly): its bytes are going, so nothing may be moved onto it.
  virtual Result<BlobReplacement> replace_blob(const std::string& old_id, const BlobId& hashed) = 0;

  // --- Copying between metadata stores (mxcd database copy) ---
  struct BlobRow {
    BlobId blob;  // with its location, when it has one
    std::string store;
    std::int64_t created_ts = 0;
    std::optional<std::int64_t> unreferenced_since_ts;
  };
  // Rows in key order, after the given key (empty: from the first), at most limit of them.
  virtual Result<std::vector<BlobRow>> list_blobs(const std::string& after_sha256,
                                                  std::size_t limit) = 0;
  virtual Result<std::vector<MediaRecord>> list_media(const MediaKey& after, std::size_t limit) = 0;
  // Adds the rows that are not there yet and leaves the others alone; returns how many it
  // added. A record's blob must be there before the record.
  virtual Result<std::size_t> add_blobs(const std::vector<BlobRow>& rows) = 0;
  virtual Result<std::size_t> add_media(const std::vector<MediaRecord>& records) = 0;
  virtual Result<std::vector<ThumbnailRecord>> list_thumbnails(const ThumbnailKey& after,
                                                               std::size_t limit) = 0;
  // A thumbnail's blob must be there before the thumbnail.
  virtual Result<std::size_t> add_thumbnails(const std::vector<ThumbnailRecord>& records) = 0;
  struct RowCounts {
    std::int64_t blobs = 0;
    std::int64_t media = 0;
    std::int64_t thumbnails = 0;
  };
  virtual Result<RowCounts> count_rows() = 0;

  virtual Status record_access(const std::vector<AccessTime>& accesses) = 0;
  // Returns how many expired, never-filled reservations were removed.
  virtual Result<int> delete_expired_pending(std::int64_t now) = 0;
  // Whether the database answers (for the health check).
  virtual Status ping() = 0;

  // For a database that several instances share: reports every change another instance
  // (or this one) makes that this instance must act on, from a thread of the store's own.
  // A database of one instance reports nothing: the pipelines act on their own changes.
  struct MediaChange {
    enum class Kind {
      filled,   // an async upload got its bytes: wake its waiters
      deleted,  // a record is gone or now refers to another blob: forget any cached copy
      unknown,  // changes may have gone unreported (the channel was lost and is back)
    } kind;
    MediaKey key;  // empty with unknown
  };
  virtual void watch_changes(std::function<void(const MediaChange&)> /*on_change*/) {}
  // Ends the reports; none is made once this returns.
  virtual void stop_watching() {}
};

}  // namespace mxcd
