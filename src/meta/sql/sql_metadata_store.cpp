#include "meta/sql/sql_metadata_store.hpp"

#include "core/clock.hpp"

#include <type_traits>

namespace mxcd::sql {

using Kind = Backend::Kind;

namespace {

// --- Reading records from rows ---

constexpr const char* kSelectMedia =
    "SELECT m.server_name, m.media_id, m.sha256, b.size, b.store, m.content_type, "
    "m.upload_name, m.uploader, m.created_ts, m.last_access_ts, m.pending_expires_ts, "
    "m.quarantined, b.location FROM media m LEFT JOIN blobs b ON b.sha256 = m.sha256 ";

// A BlobId from the columns sha256 and size at `first` and `first + 1`, and the location.
BlobId read_blob_id(const Row& row, int first, int location) {
  return BlobId{row.text(first), static_cast<std::uint64_t>(row.integer(first + 1)),
                row.optional_text(location).value_or(std::string())};
}

// A row of kSelectMedia.
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

// Joins the blob for its size, store and location.
constexpr const char* kSelectThumbnail =
    "SELECT t.server_name, t.media_id, t.width, t.height, t.method, t.animated, t.sha256, "
    "b.size, b.store, t.content_type, t.created_ts, b.location FROM thumbnails t "
    "JOIN blobs b ON b.sha256 = t.sha256 ";

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

std::string method_name(const ThumbnailKey& key) { return key.crop ? "crop" : "scale"; }

// A blob's location column: NULL for the content-addressed key.
std::optional<std::string> location_column(const BlobId& blob) {
  if (blob.location.empty()) return std::nullopt;
  return blob.location;
}

template <class Record, class Read>
std::vector<Record> read_all(const Rows& rows, Read read) {
  std::vector<Record> records;
  records.reserve(static_cast<std::size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) records.push_back(read(rows.row(i)));
  return records;
}

// --- Blobs: references and leases ---

// Makes a blob a deletion candidate once neither a record nor a thumbnail refers to it.
void mark_if_unreferenced(Session& s, const std::string& sha256, std::int64_t now) {
  s.query("UPDATE blobs SET unreferenced_since_ts = $1 WHERE sha256 = $2 "
          "AND NOT EXISTS (SELECT 1 FROM media WHERE media.sha256 = $2) "
          "AND NOT EXISTS (SELECT 1 FROM thumbnails WHERE thumbnails.sha256 = $2)",
          now, sha256);
}

// Records the blob for a new record or thumbnail, consuming the upload's lease. False when
// the lease is gone (it expired, and a deletion may have taken the bytes since); nothing is
// written then. A blob row that is already referenced is left as it is.
bool insert_blob(Session& s, const BlobId& blob, const std::string& store, std::int64_t lease,
                 std::int64_t now) {
  if (s.query("DELETE FROM blob_leases WHERE id = $1", lease).affected() == 0) return false;
  s.query("INSERT INTO blobs (sha256, size, store, created_ts) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT (sha256) DO UPDATE SET unreferenced_since_ts = NULL "
          "WHERE blobs.unreferenced_since_ts IS NOT NULL",
          blob.name, blob.size, store, now);
  return true;
}

// insert_media and fill_pending found their lease gone.
MatrixError lease_lost() {
  return MatrixError::unavailable("Storing the upload took too long; please try again");
}

std::optional<ThumbnailRecord> select_thumbnail(Session& s, const ThumbnailKey& key) {
  static const std::string query =
      std::string(kSelectThumbnail) +
      "WHERE t.server_name = $1 AND t.media_id = $2 AND t.width = $3 AND t.height = $4 "
      "AND t.method = $5 AND t.animated = $6";
  auto rows = s.query(query.c_str(), key.media.server_name, key.media.media_id, key.width,
                      key.height, method_name(key), key.animated);
  if (rows.empty()) return std::nullopt;
  return read_thumbnail(rows.first());
}

// Whether the blob is there (nullopt: it is not) and whether it is being deleted.
std::optional<bool> being_deleted(Session& s, const std::string& sha256) {
  auto rows = s.query("SELECT deleting_since_ts FROM blobs WHERE sha256 = $1", sha256);
  if (rows.empty()) return std::nullopt;
  return !rows.first().is_null(0);
}

}  // namespace

SqlMetadataStore::SqlMetadataStore(std::unique_ptr<Backend> backend)
    : backend_(std::move(backend)) {}

SqlMetadataStore::~SqlMetadataStore() = default;  // the backend stops watching

template <class F>
auto SqlMetadataStore::in_transaction(const char* operation, Kind kind, F&& body)
    -> Result<decltype(body(std::declval<Session&>()))> {
  using T = decltype(body(std::declval<Session&>()));
  if constexpr (std::is_void_v<T>) {
    return backend_->transaction(operation, kind, [&](Session& s) { body(s); });
  } else {
    std::optional<T> value;  // the last run's, when a conflict made the backend run it again
    auto status = backend_->transaction(operation, kind, [&](Session& s) { value = body(s); });
    if (!status) return status.error();
    return std::move(*value);
  }
}

Result<std::optional<MediaRecord>> SqlMetadataStore::find_media(const MediaKey& key) {
  static const std::string query =
      std::string(kSelectMedia) + "WHERE m.server_name = $1 AND m.media_id = $2";
  return in_transaction("find_media", Kind::read, [&](Session& s) -> std::optional<MediaRecord> {
    auto rows = s.query(query.c_str(), key.server_name, key.media_id);
    if (rows.empty()) return std::nullopt;
    return read_media(rows.first());
  });
}

Status SqlMetadataStore::insert_media(const MediaRecord& r, std::int64_t lease) {
  auto inserted = in_transaction("insert_media", Kind::write, [&](Session& s) {
    if (!insert_blob(s, *r.blob, r.store, lease, r.created_ts)) return false;
    s.query("INSERT INTO media (server_name, media_id, sha256, content_type, upload_name, "
            "uploader, created_ts, quarantined) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            r.key.server_name, r.key.media_id, r.blob->name, r.content_type, r.upload_name,
            r.uploader, r.created_ts, r.quarantined);
    return true;
  });
  if (!inserted) return inserted.error();
  if (!*inserted) return lease_lost();
  return {};
}

Result<MetadataStore::Reservation> SqlMetadataStore::reserve_pending(const MediaRecord& r,
                                                                     unsigned max_pending,
                                                                     std::int64_t now) {
  return in_transaction("reserve_pending", Kind::write, [&](Session& s) -> Reservation {
    auto rows = s.query("SELECT COUNT(*), MIN(pending_expires_ts) FROM media "
                        "WHERE uploader = $1 AND sha256 IS NULL AND pending_expires_ts > $2",
                        r.uploader, now);
    const Row open = rows.first();
    if (open.integer(0) >= static_cast<std::int64_t>(max_pending)) {
      return {false, open.optional_integer(1).value_or(now)};
    }
    s.query("INSERT INTO media (server_name, media_id, content_type, uploader, created_ts, "
            "pending_expires_ts) VALUES ($1, $2, $3, $4, $5, $6)",
            r.key.server_name, r.key.media_id, r.content_type, r.uploader, r.created_ts,
            r.pending_expires_ts);
    return {true, 0};
  });
}

Result<MetadataStore::FillOutcome> SqlMetadataStore::fill_pending(const MediaRecord& r,
                                                                  std::int64_t lease,
                                                                  std::int64_t now) {
  // nullopt: the lease is gone.
  auto outcome =
      in_transaction("fill_pending", Kind::write, [&](Session& s) -> std::optional<FillOutcome> {
        auto rows = s.query("SELECT sha256, uploader, pending_expires_ts FROM media "
                            "WHERE server_name = $1 AND media_id = $2",
                            r.key.server_name, r.key.media_id);
        if (rows.empty()) return FillOutcome::not_found;
        const Row reserved = rows.first();
        const bool same_uploader = reserved.text(1) == r.uploader;
        if (!reserved.is_null(0))
          return same_uploader ? FillOutcome::already_filled : FillOutcome::forbidden;
        auto expires = reserved.optional_integer(2);
        if (!expires || *expires <= now) return FillOutcome::not_found;
        if (!same_uploader) return FillOutcome::forbidden;
        if (!insert_blob(s, *r.blob, r.store, lease, now)) return std::nullopt;
        s.query("UPDATE media SET sha256 = $1, content_type = $2, upload_name = $3, "
                "pending_expires_ts = NULL WHERE server_name = $4 AND media_id = $5",
                r.blob->name, r.content_type, r.upload_name, r.key.server_name, r.key.media_id);
        s.announce({MediaChange::Kind::filled, r.key});
        return FillOutcome::filled;
      });
  if (!outcome) return outcome.error();
  if (!*outcome) return lease_lost();
  return **outcome;
}

Result<std::optional<ThumbnailRecord>> SqlMetadataStore::find_thumbnail(const ThumbnailKey& key) {
  return in_transaction("find_thumbnail", Kind::read,
                        [&](Session& s) { return select_thumbnail(s, key); });
}

Result<std::optional<ThumbnailRecord>> SqlMetadataStore::insert_thumbnail(const ThumbnailRecord& r,
                                                                          std::int64_t lease) {
  // The outer nullopt: the lease is gone.
  auto stored = in_transaction(
      "insert_thumbnail", Kind::write,
      [&](Session& s) -> std::optional<std::optional<ThumbnailRecord>> {
        if (!insert_blob(s, r.blob, r.store, lease, r.created_ts)) return std::nullopt;
        // Nothing is added when the media is gone or pending, or the row is already there.
        auto added = s.query(
            "INSERT INTO thumbnails (server_name, media_id, width, height, method, animated, "
            "sha256, "
            "content_type, created_ts) SELECT $1, $2, CAST($3 AS INTEGER), CAST($4 AS INTEGER), "
            "$5, "
            "CAST($6 AS BOOLEAN), $7, $8, CAST($9 AS BIGINT) WHERE EXISTS (SELECT 1 FROM media "
            "WHERE server_name = $1 AND media_id = $2 AND sha256 IS NOT NULL) ON CONFLICT DO "
            "NOTHING",
            r.key.media.server_name, r.key.media.media_id, r.key.width, r.key.height,
            method_name(r.key), r.key.animated, r.blob.name, r.content_type, r.created_ts);
        if (added.affected() == 0) mark_if_unreferenced(s, r.blob.name, r.created_ts);
        return select_thumbnail(s, r.key);
      });
  if (!stored) return stored.error();
  if (!*stored) return lease_lost();
  return std::move(**stored);
}

Result<bool> SqlMetadataStore::delete_media(const MediaKey& key, std::int64_t now) {
  return in_transaction("delete_media", Kind::write, [&](Session& s) {
    auto media = s.query("DELETE FROM media WHERE server_name = $1 AND media_id = $2 "
                         "RETURNING sha256",
                         key.server_name, key.media_id);
    if (media.empty()) return false;
    // Other instances may hold the record in their caches.
    s.announce({MediaChange::Kind::deleted, key});
    auto thumbnails = s.query("DELETE FROM thumbnails WHERE server_name = $1 AND media_id = $2 "
                              "RETURNING sha256",
                              key.server_name, key.media_id);
    if (auto sha256 = media.first().optional_text(0)) mark_if_unreferenced(s, *sha256, now);
    for (int i = 0; i < thumbnails.size(); ++i) {
      mark_if_unreferenced(s, thumbnails.row(i).text(0), now);
    }
    return true;
  });
}

Result<std::optional<std::int64_t>> SqlMetadataStore::lease_blob(
    const std::string& sha256, std::int64_t expires_ts, const std::optional<BlobToStore>& storing) {
  return in_transaction("lease_blob", Kind::lease, [&](Session& s) -> std::optional<std::int64_t> {
    auto deleting = being_deleted(s, sha256);
    if (deleting && *deleting) return std::nullopt;
    if (storing && !deleting) {
      // Unreferenced from the start, so that the collector takes the bytes should no record
      // ever refer to them.
      s.query("INSERT INTO blobs (sha256, size, store, created_ts, unreferenced_since_ts) "
              "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (sha256) DO NOTHING",
              sha256, storing->blob.size, storing->store, storing->now);
    }
    auto lease =
        s.query("INSERT INTO blob_leases (sha256, expires_ts) VALUES ($1, $2) RETURNING id", sha256,
                expires_ts);
    return lease.first().integer(0);
  });
}

Status SqlMetadataStore::release_lease(std::int64_t lease) {
  return in_transaction("release_lease", Kind::lease, [&](Session& s) {
    s.query("DELETE FROM blob_leases WHERE id = $1", lease);
  });
}

Result<std::vector<MetadataStore::DoomedBlob>> SqlMetadataStore::claim_unreferenced_blobs(
    std::int64_t now, std::int64_t reclaim_before_ts, std::size_t limit) {
  static const std::string query =
      std::string("SELECT sha256, size, store, location FROM blobs b WHERE "
                  "(b.unreferenced_since_ts IS NOT NULL AND b.deleting_since_ts IS NULL "
                  "AND NOT EXISTS (SELECT 1 FROM blob_leases l WHERE l.sha256 = b.sha256) "
                  "AND NOT EXISTS (SELECT 1 FROM media m WHERE m.sha256 = b.sha256) "
                  "AND NOT EXISTS (SELECT 1 FROM thumbnails t WHERE t.sha256 = b.sha256)) "
                  "OR b.deleting_since_ts < $1 LIMIT $2") +
      backend_->dialect().claim_rows;
  return in_transaction("claim_unreferenced_blobs", Kind::write, [&](Session& s) {
    s.query("DELETE FROM blob_leases WHERE expires_ts <= $1", now);
    auto doomed = read_all<DoomedBlob>(
        s.query(query.c_str(), reclaim_before_ts, static_cast<std::int64_t>(limit)),
        [](const Row& row) {
          return DoomedBlob{read_blob_id(row, 0, 3), row.text(2)};
        });
    for (const auto& d : doomed) {
      s.query("UPDATE blobs SET deleting_since_ts = $1 WHERE sha256 = $2", now, d.blob.name);
    }
    return doomed;
  });
}

Status SqlMetadataStore::finish_blob_deletion(const std::string& sha256) {
  return in_transaction("finish_blob_deletion", Kind::write, [&](Session& s) {
    s.query("DELETE FROM blobs WHERE sha256 = $1 AND deleting_since_ts IS NOT NULL", sha256);
  });
}

Status SqlMetadataStore::abandon_blob_deletion(const std::string& sha256) {
  return in_transaction("abandon_blob_deletion", Kind::write, [&](Session& s) {
    s.query("UPDATE blobs SET deleting_since_ts = NULL WHERE sha256 = $1", sha256);
  });
}

Result<MetadataStore::BlobReplacement> SqlMetadataStore::replace_blob(const std::string& old_id,
                                                                      const BlobId& hashed) {
  if (!is_sha256_hex(hashed.name) || hashed.name == old_id) {
    return MatrixError::internal("A blob can only be replaced by a different content hash");
  }
  // One transaction: a claim of either blob that overlaps it waits for it (SQLite) or makes
  // one of the two run again (PostgreSQL), so records never move onto a blob whose deletion
  // began. nullopt: hashed.name is being deleted.
  auto outcome = in_transaction(
      "replace_blob", Kind::write, [&](Session& s) -> std::optional<BlobReplacement> {
        auto old_deleting = being_deleted(s, old_id);
        if (!old_deleting || *old_deleting) return BlobReplacement::not_found;
        auto target_deleting = being_deleted(s, hashed.name);
        if (target_deleting && *target_deleting) return std::nullopt;
        auto repoint = [&] {
          auto media = s.query("UPDATE media SET sha256 = $1 WHERE sha256 = $2 "
                               "RETURNING server_name, media_id",
                               hashed.name, old_id);
          // Instances holding a moved record in their caches must read it again.
          for (int i = 0; i < media.size(); ++i) {
            s.announce({MediaChange::Kind::deleted, {media.row(i).text(0), media.row(i).text(1)}});
          }
          return media.affected() +
                 s.query("UPDATE thumbnails SET sha256 = $1 WHERE sha256 = $2", hashed.name, old_id)
                     .affected();
        };
        if (target_deleting) {
          // The hashed blob is stored already: it takes the records over, and the old blob is
          // left to the collector.
          if (repoint() > 0) {
            s.query("UPDATE blobs SET unreferenced_since_ts = NULL WHERE sha256 = $1", hashed.name);
          }
          mark_if_unreferenced(s, old_id, now_ms());
          return BlobReplacement::merged;
        }
        // The new row first and the old one last: records always refer to a row that exists.
        // It takes over everything of the old row but its name.
        s.query(
            "INSERT INTO blobs (sha256, size, store, created_ts, unreferenced_since_ts, location) "
            "SELECT $1, size, store, created_ts, unreferenced_since_ts, location FROM blobs "
            "WHERE sha256 = $2",
            hashed.name, old_id);
        repoint();
        s.query("DELETE FROM blobs WHERE sha256 = $1", old_id);
        return BlobReplacement::replaced;
      });
  if (!outcome) return outcome.error();
  if (!*outcome)
    return MatrixError::unavailable("The same content is being deleted; please try again");
  return **outcome;
}

// --- Copying between metadata stores ---

Result<std::vector<MetadataStore::BlobRow>> SqlMetadataStore::list_blobs(
    const std::string& after_sha256, std::size_t limit) {
  return in_transaction("list_blobs", Kind::read, [&](Session& s) {
    return read_all<BlobRow>(
        s.query("SELECT sha256, size, store, created_ts, unreferenced_since_ts, location "
                "FROM blobs WHERE sha256 > $1 ORDER BY sha256 LIMIT $2",
                after_sha256, static_cast<std::int64_t>(limit)),
        [](const Row& row) {
          return BlobRow{read_blob_id(row, 0, 5), row.text(2), row.integer(3),
                         row.optional_integer(4)};
        });
  });
}

Result<std::vector<MediaRecord>> SqlMetadataStore::list_media(const MediaKey& after,
                                                              std::size_t limit) {
  static const std::string query = std::string(kSelectMedia) +
                                   "WHERE (m.server_name, m.media_id) > ($1, $2) "
                                   "ORDER BY m.server_name, m.media_id LIMIT $3";
  return in_transaction("list_media", Kind::read, [&](Session& s) {
    return read_all<MediaRecord>(
        s.query(query.c_str(), after.server_name, after.media_id, static_cast<std::int64_t>(limit)),
        read_media);
  });
}

Result<std::vector<ThumbnailRecord>> SqlMetadataStore::list_thumbnails(const ThumbnailKey& after,
                                                                       std::size_t limit) {
  static const std::string query =
      std::string(kSelectThumbnail) +
      "WHERE (t.server_name, t.media_id, t.width, t.height, t.method, t.animated) > "
      "($1, $2, CAST($3 AS INTEGER), CAST($4 AS INTEGER), $5, CAST($6 AS BOOLEAN)) "
      "ORDER BY t.server_name, t.media_id, t.width, t.height, t.method, t.animated LIMIT $7";
  return in_transaction("list_thumbnails", Kind::read, [&](Session& s) {
    return read_all<ThumbnailRecord>(
        s.query(query.c_str(), after.media.server_name, after.media.media_id, after.width,
                after.height, method_name(after), after.animated, static_cast<std::int64_t>(limit)),
        read_thumbnail);
  });
}

// Adds each row with `insert`, which leaves a row that is there already alone; returns how
// many were new.
template <class Record, class Insert>
static std::size_t add_each(const std::vector<Record>& rows, Insert insert) {
  std::size_t added = 0;
  for (const auto& row : rows) added += static_cast<std::size_t>(insert(row).affected());
  return added;
}

Result<std::size_t> SqlMetadataStore::add_blobs(const std::vector<BlobRow>& rows) {
  return in_transaction("add_blobs", Kind::plain_write, [&](Session& s) {
    return add_each(rows, [&](const BlobRow& b) {
      return s.query("INSERT INTO blobs (sha256, size, store, created_ts, unreferenced_since_ts, "
                     "location) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
                     b.blob.name, b.blob.size, b.store, b.created_ts, b.unreferenced_since_ts,
                     location_column(b.blob));
    });
  });
}

Result<std::size_t> SqlMetadataStore::add_media(const std::vector<MediaRecord>& records) {
  return in_transaction("add_media", Kind::plain_write, [&](Session& s) {
    return add_each(records, [&](const MediaRecord& r) {
      std::optional<std::string> sha256;
      if (r.blob) sha256 = r.blob->name;
      return s.query("INSERT INTO media (server_name, media_id, sha256, content_type, upload_name, "
                     "uploader, created_ts, last_access_ts, pending_expires_ts, quarantined) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                     "ON CONFLICT (server_name, media_id) DO NOTHING",
                     r.key.server_name, r.key.media_id, sha256, r.content_type, r.upload_name,
                     r.uploader, r.created_ts, r.last_access_ts, r.pending_expires_ts,
                     r.quarantined);
    });
  });
}

Result<std::size_t> SqlMetadataStore::add_thumbnails(const std::vector<ThumbnailRecord>& records) {
  return in_transaction("add_thumbnails", Kind::plain_write, [&](Session& s) {
    return add_each(records, [&](const ThumbnailRecord& r) {
      return s.query("INSERT INTO thumbnails (server_name, media_id, width, height, method, "
                     "animated, sha256, content_type, created_ts) VALUES ($1, $2, $3, $4, $5, "
                     "CAST($6 AS BOOLEAN), $7, $8, $9) ON CONFLICT DO NOTHING",
                     r.key.media.server_name, r.key.media.media_id, r.key.width, r.key.height,
                     method_name(r.key), r.key.animated, r.blob.name, r.content_type, r.created_ts);
    });
  });
}

Result<MetadataStore::RowCounts> SqlMetadataStore::count_rows() {
  return in_transaction("count_rows", Kind::read, [&](Session& s) {
    auto rows = s.query("SELECT (SELECT COUNT(*) FROM blobs), (SELECT COUNT(*) FROM media), "
                        "(SELECT COUNT(*) FROM thumbnails)");
    const Row counts = rows.first();
    return RowCounts{counts.integer(0), counts.integer(1), counts.integer(2)};
  });
}

// --- Upkeep ---

Status SqlMetadataStore::record_access(const std::vector<AccessTime>& accesses) {
  // Only ever moves a timestamp forward, so concurrent batches cannot undo each other.
  return in_transaction("record_access", Kind::plain_write, [&](Session& s) {
    for (const auto& a : accesses) {
      s.query("UPDATE media SET last_access_ts = $1 WHERE server_name = $2 AND media_id = $3 "
              "AND (last_access_ts IS NULL OR last_access_ts < $1)",
              a.ts, a.key.server_name, a.key.media_id);
    }
  });
}

Result<int> SqlMetadataStore::delete_expired_pending(std::int64_t now) {
  // The rows it removes can no longer change: an expired reservation is never filled.
  return in_transaction("delete_expired_pending", Kind::plain_write, [&](Session& s) {
    return static_cast<int>(
        s.query("DELETE FROM media WHERE sha256 IS NULL AND pending_expires_ts <= $1", now)
            .affected());
  });
}

Status SqlMetadataStore::ping() {
  return in_transaction("ping", Kind::read, [](Session& s) { s.query("SELECT 1"); });
}

void SqlMetadataStore::watch_changes(std::function<void(const MediaChange&)> on_change) {
  backend_->watch_changes(std::move(on_change));
}

void SqlMetadataStore::stop_watching() { backend_->stop_watching(); }

}  // namespace mxcd::sql
