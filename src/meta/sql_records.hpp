// What the SQL metadata stores (SQLite, PostgreSQL) share: the columns a media record, a
// thumbnail or a blob is read from, reading them from a row of either, the statements that
// read the same in both dialects, and the error for a lost blob lease.
#pragma once

#include "meta/metadata_store.hpp"

namespace mxcd::sql {

// Followed by a WHERE clause in the store's own placeholder syntax.
inline constexpr const char* kSelectMedia =
    "SELECT m.server_name, m.media_id, m.sha256, b.size, b.store, m.content_type, "
    "m.upload_name, m.uploader, m.created_ts, m.last_access_ts, m.pending_expires_ts, "
    "m.quarantined, b.location FROM media m LEFT JOIN blobs b ON b.sha256 = m.sha256 ";

// A blob's location column: NULL for the content-addressed key.
inline std::optional<std::string> location_column(const BlobId& blob) {
  if (blob.location.empty()) return std::nullopt;
  return blob.location;
}

// A BlobId from the columns sha256, size and location at `first`, first + 1 and `location`.
template <class Row>
BlobId read_blob_id(const Row& row, int first, int location) {
  return BlobId{row.text(first), static_cast<std::uint64_t>(row.integer(first + 1)),
                row.optional_text(location).value_or(std::string())};
}

// Row: text(), integer(), is_null(), optional_text(), optional_integer() and flag() by column.
template <class Row>
MediaRecord read_media(const Row& row) {
  MediaRecord r;
  r.key = {row.text(0), row.text(1)};
  if (!row.is_null(2)) {
    r.blob = read_blob_id(row, 2, 12);
    r.store = row.text(4);
  }
  r.content_type = row.text(5);
  r.upload_name = row.optional_text(6);
  r.uploader = row.text(7);
  r.created_ts = row.integer(8);
  r.last_access_ts = row.optional_integer(9);
  r.pending_expires_ts = row.optional_integer(10);
  r.quarantined = row.flag(11);
  return r;
}

// Followed by the WHERE clause; joins the blob for its size, store and location.
inline constexpr const char* kSelectThumbnail =
    "SELECT t.server_name, t.media_id, t.width, t.height, t.method, t.animated, t.sha256, "
    "b.size, b.store, t.content_type, t.created_ts, b.location FROM thumbnails t "
    "JOIN blobs b ON b.sha256 = t.sha256 ";

template <class Row>
ThumbnailRecord read_thumbnail(const Row& row) {
  ThumbnailRecord r;
  r.key.media = {row.text(0), row.text(1)};
  r.key.width = static_cast<unsigned>(row.integer(2));
  r.key.height = static_cast<unsigned>(row.integer(3));
  r.key.crop = row.text(4) == "crop";
  r.key.animated = row.flag(5);
  r.blob = read_blob_id(row, 6, 11);
  r.store = row.text(8);
  r.content_type = row.text(9);
  r.created_ts = row.integer(10);
  return r;
}

// Adds a thumbnail unless its media is gone or pending, or the row is already there.
// Parameters $1..$9: server name, media ID, width, height, method, animated, sha256, content
// type, created_ts. The casts type the parameters for PostgreSQL.
inline constexpr const char* kInsertThumbnail =
    "INSERT INTO thumbnails (server_name, media_id, width, height, method, animated, sha256, "
    "content_type, created_ts) SELECT $1, $2, CAST($3 AS INTEGER), CAST($4 AS INTEGER), $5, "
    "CAST($6 AS BOOLEAN), $7, $8, CAST($9 AS BIGINT) WHERE EXISTS (SELECT 1 FROM media "
    "WHERE server_name = $1 AND media_id = $2 AND sha256 IS NOT NULL) ON CONFLICT DO NOTHING";

// The thumbnails after a key in key order: parameters $1..$6 the key, $7 the limit.
inline constexpr const char* kListThumbnailsWhere =
    "WHERE (t.server_name, t.media_id, t.width, t.height, t.method, t.animated) > "
    "($1, $2, CAST($3 AS INTEGER), CAST($4 AS INTEGER), $5, CAST($6 AS BOOLEAN)) "
    "ORDER BY t.server_name, t.media_id, t.width, t.height, t.method, t.animated LIMIT $7";

// Copies a thumbnail row as it is (mxcd database copy). Parameters as for kInsertThumbnail.
inline constexpr const char* kCopyThumbnail =
    "INSERT INTO thumbnails (server_name, media_id, width, height, method, animated, sha256, "
    "content_type, created_ts) VALUES ($1, $2, CAST($3 AS INTEGER), CAST($4 AS INTEGER), $5, "
    "CAST($6 AS BOOLEAN), $7, $8, CAST($9 AS BIGINT)) ON CONFLICT DO NOTHING";

// The blob rows after a key in key order: parameters $1 the key, $2 the limit.
inline constexpr const char* kListBlobs =
    "SELECT sha256, size, store, created_ts, unreferenced_since_ts, location FROM blobs "
    "WHERE sha256 > $1 ORDER BY sha256 LIMIT $2";

template <class Row>
MetadataStore::BlobRow read_blob_row(const Row& row) {
  return {read_blob_id(row, 0, 5), row.text(2), row.integer(3), row.optional_integer(4)};
}

// Copies a blob row as it is (mxcd database copy). Parameters $1..$6: sha256, size, store,
// created_ts, unreferenced_since_ts, location.
inline constexpr const char* kCopyBlob =
    "INSERT INTO blobs (sha256, size, store, created_ts, unreferenced_since_ts, location) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING";

// The columns a claimed blob is read from: sha256, size, store, location (read_doomed_blob).
inline constexpr const char* kDoomedBlobColumns = "SELECT sha256, size, store, location FROM blobs b ";

template <class Row>
MetadataStore::DoomedBlob read_doomed_blob(const Row& row) {
  return {read_blob_id(row, 0, 3), row.text(2)};
}

// --- replace_blob ---
// Whether the blob $1 is there, and whether it is being deleted (column 0 not NULL).
inline constexpr const char* kBlobDeletionState = "SELECT deleting_since_ts FROM blobs WHERE sha256 = $1";
// Moves the records and thumbnails of blob $2 to blob $1.
inline constexpr const char* kRepointMedia = "UPDATE media SET sha256 = $1 WHERE sha256 = $2";
inline constexpr const char* kRepointThumbnails = "UPDATE thumbnails SET sha256 = $1 WHERE sha256 = $2";
// A blob that records were moved to is referred to again.
inline constexpr const char* kMarkReferenced =
    "UPDATE blobs SET unreferenced_since_ts = NULL WHERE sha256 = $1";
// Blob $1 takes over everything of blob $2 but its name: size, store, location, timestamps.
inline constexpr const char* kCopyBlobAs =
    "INSERT INTO blobs (sha256, size, store, created_ts, unreferenced_since_ts, location) "
    "SELECT $1, size, store, created_ts, unreferenced_since_ts, location FROM blobs "
    "WHERE sha256 = $2";
inline constexpr const char* kDeleteBlob = "DELETE FROM blobs WHERE sha256 = $1";

// replace_blob's arguments are not a rename of one blob to a content hash.
inline std::optional<MatrixError> invalid_replacement(const std::string& old_id, const BlobId& hashed) {
  if (!is_sha256_hex(hashed.sha256) || hashed.sha256 == old_id) {
    return MatrixError::internal("A blob can only be replaced by a different content hash");
  }
  return std::nullopt;
}

// A blob being deleted cannot take records over.
inline MatrixError replacement_being_deleted() {
  return MatrixError::unavailable("The same content is being deleted; please try again");
}

inline std::string method_name(const ThumbnailKey& key) { return key.crop ? "crop" : "scale"; }

// Makes a blob a deletion candidate once neither a record nor a thumbnail refers to it.
// Parameters: $1 now, $2 sha256 (SQLite reads $N as the Nth parameter too).
inline constexpr const char* kMarkIfUnreferenced =
    "UPDATE blobs SET unreferenced_since_ts = $1 WHERE sha256 = $2 "
    "AND NOT EXISTS (SELECT 1 FROM media WHERE media.sha256 = $2) "
    "AND NOT EXISTS (SELECT 1 FROM thumbnails WHERE thumbnails.sha256 = $2)";

// lease_blob's row for bytes about to be stored (MetadataStore::BlobToStore): unreferenced
// from the start, so that the collector takes them should no record ever refer to them.
// Parameters: $1 sha256, $2 size, $3 store, $4 now.
inline constexpr const char* kInsertBlobToStore =
    "INSERT INTO blobs (sha256, size, store, created_ts, unreferenced_since_ts) "
    "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (sha256) DO NOTHING";

// The claim's test that no record, thumbnail or lease holds blob b.
inline constexpr const char* kNothingRefersToBlob =
    " NOT EXISTS (SELECT 1 FROM blob_leases l WHERE l.sha256 = b.sha256) "
    " AND NOT EXISTS (SELECT 1 FROM media m WHERE m.sha256 = b.sha256) "
    " AND NOT EXISTS (SELECT 1 FROM thumbnails t WHERE t.sha256 = b.sha256) ";

// insert_media and fill_pending found their lease gone: it expired, and a deletion may have
// taken the bytes since.
inline MatrixError lease_lost() {
  return MatrixError::unavailable("Storing the upload took too long; please try again");
}

}  // namespace mxcd::sql
