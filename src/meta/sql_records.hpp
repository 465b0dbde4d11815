// What the SQL metadata stores (SQLite, PostgreSQL) share: the columns a media record is
// read from, reading them from a row of either, and the error for a lost blob lease.
#pragma once

#include "meta/metadata_store.hpp"

namespace mxcd::sql {

// Followed by a WHERE clause in the store's own placeholder syntax.
inline constexpr const char* kSelectMedia =
    "SELECT m.server_name, m.media_id, m.sha256, b.size, b.store, m.content_type, "
    "m.upload_name, m.uploader, m.created_ts, m.last_access_ts, m.pending_expires_ts, "
    "m.quarantined FROM media m LEFT JOIN blobs b ON b.sha256 = m.sha256 ";

// Row: text(), integer(), is_null(), optional_text(), optional_integer() and flag() by column.
template <class Row>
MediaRecord read_media(const Row& row) {
  MediaRecord r;
  r.key = {row.text(0), row.text(1)};
  if (!row.is_null(2)) {
    r.blob = BlobId{row.text(2), static_cast<std::uint64_t>(row.integer(3))};
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

// insert_media and fill_pending found their lease gone: it expired, and a deletion may have
// taken the bytes since.
inline MatrixError lease_lost() {
  return MatrixError::unavailable("Storing the upload took too long; please try again");
}

}  // namespace mxcd::sql
