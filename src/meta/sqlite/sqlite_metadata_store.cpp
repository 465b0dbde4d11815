#include "meta/sqlite/sqlite_metadata_store.hpp"

#include "core/clock.hpp"
#include "meta/sql_records.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <stdexcept>
#include <string>
#include <unordered_map>

namespace mxcd {

namespace {

// Each entry moves the schema one version up. Never edit an entry once released: add one.
constexpr const char* kMigrations[] = {
    // 1: blobs and media records.
    R"sql(
    CREATE TABLE blobs (
      sha256     TEXT PRIMARY KEY,   -- lower-case hex of the content's SHA-256
      size       INTEGER NOT NULL,
      store      TEXT NOT NULL,      -- the blob store that holds it
      created_ts INTEGER NOT NULL
    );
    CREATE TABLE media (
      server_name        TEXT NOT NULL,
      media_id           TEXT NOT NULL,
      sha256             TEXT REFERENCES blobs (sha256),  -- NULL while pending
      content_type       TEXT NOT NULL,
      upload_name        TEXT,
      uploader           TEXT NOT NULL,
      created_ts         INTEGER NOT NULL,
      last_access_ts     INTEGER,
      pending_expires_ts INTEGER,                          -- set while pending
      quarantined        INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (server_name, media_id)
    );
    CREATE INDEX media_by_blob ON media (sha256);
    CREATE INDEX media_pending_by_uploader ON media (uploader, pending_expires_ts)
      WHERE sha256 IS NULL;
    )sql",
    // 2: deleting blobs whose last record is gone (see MetadataStore: leases).
    R"sql(
    ALTER TABLE blobs ADD COLUMN unreferenced_since_ts INTEGER;  -- NULL while a record refers to it
    ALTER TABLE blobs ADD COLUMN deleting_since_ts INTEGER;      -- set while its bytes are removed
    CREATE INDEX blobs_unreferenced ON blobs (unreferenced_since_ts)
      WHERE unreferenced_since_ts IS NOT NULL;
    CREATE TABLE blob_leases (
      id         INTEGER PRIMARY KEY,
      sha256     TEXT NOT NULL,
      expires_ts INTEGER NOT NULL
    );
    CREATE INDEX blob_leases_by_blob ON blob_leases (sha256);
    )sql",
    // 3: thumbnails, one row per media and box (see ThumbnailKey).
    R"sql(
    CREATE TABLE thumbnails (
      server_name  TEXT NOT NULL,
      media_id     TEXT NOT NULL,
      width        INTEGER NOT NULL,  -- the box asked for after snapping, not the output's size
      height       INTEGER NOT NULL,
      method       TEXT NOT NULL,     -- crop or scale
      animated     INTEGER NOT NULL,
      sha256       TEXT NOT NULL REFERENCES blobs (sha256),
      content_type TEXT NOT NULL,
      created_ts   INTEGER NOT NULL,
      PRIMARY KEY (server_name, media_id, width, height, method, animated)
    );
    CREATE INDEX thumbnails_by_blob ON thumbnails (sha256);
    )sql",
    // 4: blobs adopted in place (see BlobId::location).
    R"sql(
    ALTER TABLE blobs ADD COLUMN location TEXT;  -- the object's key; NULL: content-addressed
    )sql",
};

struct SqliteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      throw SqliteError(std::string("prepare: ") + sqlite3_errmsg(db));
    }
  }
  ~SqliteStatement() { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Binds parameters 1..n in order.
  template <class... Args>
  SqliteStatement& bind(const Args&... args) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    int index = 0;
    (bind_one(++index, args), ...);
    return *this;
  }

  // True while there is a row to read.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw SqliteError(std::string("step: ") + sqlite3_errmsg(db_));
  }

  void run() {
    while (step()) {
    }
    sqlite3_reset(stmt_);
  }

  std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string text(int column) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
             : std::string();
  }
  std::optional<std::string> optional_text(int column) const {
    if (is_null(column)) return std::nullopt;
    return text(column);
  }
  std::optional<std::int64_t> optional_integer(int column) const {
    if (is_null(column)) return std::nullopt;
    return integer(column);
  }
  bool flag(int column) const { return integer(column) != 0; }
  void reset() { sqlite3_reset(stmt_); }

 private:
  void bind_one(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind_one(int i, int v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind_one(int i, unsigned v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind_one(int i, bool v) { sqlite3_bind_int(stmt_, i, v ? 1 : 0); }
  void bind_one(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind_one(int i, const std::optional<std::string>& v) {
    if (v) bind_one(i, *v);
    else sqlite3_bind_null(stmt_, i);
  }
  void bind_one(int i, const std::optional<std::int64_t>& v) {
    if (v) bind_one(i, *v);
    else sqlite3_bind_null(stmt_, i);
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteConnection {
 public:
  explicit SqliteConnection(const std::filesystem::path& path) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw SqliteError("cannot open " + path.string() + ": " + message);
    }
    sqlite3_busy_timeout(db_, 10'000);
    // WAL lets readers run beside the writer; FULL makes every commit durable before the
    // client hears of it (principle 5: a crash never loses acknowledged media).
    exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
  }
  ~SqliteConnection() {
    statements_.clear();
    sqlite3_close(db_);
  }

  void exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error ? error : "unknown error";
      sqlite3_free(error);
      throw SqliteError(message);
    }
  }

  // Statements are prepared once per connection and reused; the SQL text is the key.
  SqliteStatement& statement(const char* sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      it = statements_.emplace(sql, std::make_unique<SqliteStatement>(db_, sql)).first;
    }
    return *it->second;
  }

  int changes() const { return sqlite3_changes(db_); }
  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, std::unique_ptr<SqliteStatement>> statements_;
};

namespace {

// BEGIN IMMEDIATE takes the write lock up front, so read-then-write sequences cannot race.
// For writes that need not survive a crash, such as blob leases: whoever holds a lease dies
// with the process. Their commits skip the fsync; the next durable commit syncs them anyway.
class NotDurable {
 public:
  explicit NotDurable(SqliteConnection& c) : c_(c) { c_.exec("PRAGMA synchronous = NORMAL"); }
  ~NotDurable() {
    try {
      c_.exec("PRAGMA synchronous = FULL");
    } catch (const SqliteError&) {
    }
  }

 private:
  SqliteConnection& c_;
};

class Transaction {
 public:
  explicit Transaction(SqliteConnection& c) : c_(c) { c_.exec("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) {
      try {
        c_.exec("ROLLBACK");
      } catch (const SqliteError&) {
      }
    }
  }
  void commit() {
    c_.exec("COMMIT");
    done_ = true;
  }

 private:
  SqliteConnection& c_;
  bool done_ = false;
};

// Runs one store operation, turning a database failure into a logged 500.
template <class F>
auto guarded(const char* operation, F&& f) -> Result<decltype(f())> {
  try {
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      return {};
    } else {
      return f();
    }
  } catch (const SqliteError& e) {
    spdlog::error("database: {} failed: {}", operation, e.what());
    return MatrixError::internal("Database error");
  }
}

// Records the blob for a new record, consuming the upload's lease. False when the lease is
// gone (it expired and a deletion may have taken the bytes).
bool insert_blob(SqliteConnection& c, const BlobId& blob, const std::string& store,
                 std::int64_t lease, std::int64_t now) {
  c.statement("DELETE FROM blob_leases WHERE id = ?").bind(lease).run();
  if (c.changes() == 0) return false;
  c.statement("INSERT INTO blobs (sha256, size, store, created_ts) VALUES (?, ?, ?, ?) "
              "ON CONFLICT (sha256) DO UPDATE SET unreferenced_since_ts = NULL")
      .bind(blob.sha256, static_cast<std::int64_t>(blob.size), store, now)
      .run();
  return true;
}

}  // namespace

SqliteMetadataStore::SqliteMetadataStore(const std::filesystem::path& path) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  writer_ = std::make_unique<SqliteConnection>(path);
  auto& c = *writer_;
  c.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  auto& select = c.statement("SELECT version FROM schema_version");
  select.bind();
  int version = select.step() ? static_cast<int>(select.integer(0)) : 0;
  select.reset();
  const int latest = schema_version();
  if (version > latest) {
    throw std::runtime_error("the database " + path.string() + " has schema version " +
                             std::to_string(version) + ", newer than this mxcd understands (" +
                             std::to_string(latest) + "): run a newer mxcd");
  }
  for (; version < latest; ++version) {
    Transaction tx(c);
    c.exec(kMigrations[version]);
    c.exec("DELETE FROM schema_version");
    c.statement("INSERT INTO schema_version (version) VALUES (?)").bind(version + 1).run();
    tx.commit();
    spdlog::info("database migrated to schema version {}", version + 1);
  }
  reader_ = std::make_unique<SqliteConnection>(path);
}

SqliteMetadataStore::~SqliteMetadataStore() = default;

int SqliteMetadataStore::schema_version() {
  return static_cast<int>(std::size(kMigrations));
}

Result<std::optional<MediaRecord>> SqliteMetadataStore::find_media(const MediaKey& key) {
  static const std::string query =
      std::string(sql::kSelectMedia) + "WHERE m.server_name = ? AND m.media_id = ?";
  std::lock_guard lock(reader_mutex_);
  return guarded("find_media", [&]() -> std::optional<MediaRecord> {
    auto& q = reader_->statement(query.c_str());
    q.bind(key.server_name, key.media_id);
    if (!q.step()) return std::nullopt;
    MediaRecord r = sql::read_media(q);
    q.reset();
    return r;
  });
}

Status SqliteMetadataStore::insert_media(const MediaRecord& r, std::int64_t lease) {
  std::lock_guard lock(writer_mutex_);
  auto inserted = guarded("insert_media", [&] {
    Transaction tx(*writer_);
    if (!insert_blob(*writer_, *r.blob, r.store, lease, r.created_ts)) return false;
    writer_
        ->statement("INSERT INTO media (server_name, media_id, sha256, content_type, "
                    "upload_name, uploader, created_ts, quarantined) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(r.key.server_name, r.key.media_id, r.blob->sha256, r.content_type, r.upload_name,
              r.uploader, r.created_ts, r.quarantined)
        .run();
    tx.commit();
    return true;
  });
  if (!inserted) return inserted.error();
  if (!*inserted) return sql::lease_lost();
  return {};
}

Result<MetadataStore::Reservation> SqliteMetadataStore::reserve_pending(const MediaRecord& r,
                                                                        unsigned max_pending,
                                                                        std::int64_t now) {
  std::lock_guard lock(writer_mutex_);
  return guarded("reserve_pending", [&]() -> Reservation {
    Transaction tx(*writer_);
    auto& count = writer_->statement(
        "SELECT COUNT(*), MIN(pending_expires_ts) FROM media "
        "WHERE uploader = ? AND sha256 IS NULL AND pending_expires_ts > ?");
    count.bind(r.uploader, now);
    count.step();
    std::int64_t open = count.integer(0);
    std::int64_t oldest = count.is_null(1) ? now : count.integer(1);
    count.reset();
    if (open >= static_cast<std::int64_t>(max_pending)) return {false, oldest};
    writer_
        ->statement("INSERT INTO media (server_name, media_id, content_type, uploader, "
                    "created_ts, pending_expires_ts) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(r.key.server_name, r.key.media_id, r.content_type, r.uploader, r.created_ts,
              r.pending_expires_ts)
        .run();
    tx.commit();
    return {true, 0};
  });
}

Result<MetadataStore::FillOutcome> SqliteMetadataStore::fill_pending(const MediaRecord& r,
                                                                     std::int64_t lease,
                                                                     std::int64_t now) {
  std::lock_guard lock(writer_mutex_);
  auto outcome = guarded("fill_pending", [&]() -> std::optional<FillOutcome> {
    Transaction tx(*writer_);
    auto& q = writer_->statement(
        "SELECT sha256, uploader, pending_expires_ts FROM media "
        "WHERE server_name = ? AND media_id = ?");
    q.bind(r.key.server_name, r.key.media_id);
    if (!q.step()) return FillOutcome::not_found;
    bool filled = !q.is_null(0);
    std::string uploader = q.text(1);
    std::optional<std::int64_t> expires = q.optional_integer(2);
    q.reset();
    if (filled) return uploader == r.uploader ? FillOutcome::already_filled : FillOutcome::forbidden;
    if (!expires || *expires <= now) return FillOutcome::not_found;
    if (uploader != r.uploader) return FillOutcome::forbidden;
    if (!insert_blob(*writer_, *r.blob, r.store, lease, now)) return std::nullopt;
    writer_
        ->statement("UPDATE media SET sha256 = ?, content_type = ?, upload_name = ?, "
                    "pending_expires_ts = NULL WHERE server_name = ? AND media_id = ?")
        .bind(r.blob->sha256, r.content_type, r.upload_name, r.key.server_name, r.key.media_id)
        .run();
    tx.commit();
    return FillOutcome::filled;
  });
  if (!outcome) return outcome.error();
  if (!*outcome) return sql::lease_lost();
  return **outcome;
}

namespace {
const std::string kSelectThumbnailByKey =
    std::string(sql::kSelectThumbnail) +
    "WHERE t.server_name = ? AND t.media_id = ? AND t.width = ? AND t.height = ? "
    "AND t.method = ? AND t.animated = ?";

std::optional<ThumbnailRecord> select_thumbnail(SqliteConnection& c, const ThumbnailKey& key) {
  auto& q = c.statement(kSelectThumbnailByKey.c_str());
  q.bind(key.media.server_name, key.media.media_id, static_cast<std::int64_t>(key.width),
         static_cast<std::int64_t>(key.height), sql::method_name(key), key.animated);
  if (!q.step()) return std::nullopt;
  ThumbnailRecord r = sql::read_thumbnail(q);
  q.reset();
  return r;
}
}  // namespace

Result<std::optional<ThumbnailRecord>> SqliteMetadataStore::find_thumbnail(
    const ThumbnailKey& key) {
  std::lock_guard lock(reader_mutex_);
  return guarded("find_thumbnail", [&] { return select_thumbnail(*reader_, key); });
}

Result<std::optional<ThumbnailRecord>> SqliteMetadataStore::insert_thumbnail(
    const ThumbnailRecord& r, std::int64_t lease) {
  std::lock_guard lock(writer_mutex_);
  auto stored = guarded("insert_thumbnail", [&]() -> std::optional<std::optional<ThumbnailRecord>> {
    Transaction tx(*writer_);
    if (!insert_blob(*writer_, r.blob, r.store, lease, r.created_ts)) return std::nullopt;
    writer_
        ->statement(
            sql::kInsertThumbnail)
        .bind(r.key.media.server_name, r.key.media.media_id, static_cast<std::int64_t>(r.key.width),
              static_cast<std::int64_t>(r.key.height), sql::method_name(r.key), r.key.animated,
              r.blob.sha256, r.content_type, r.created_ts)
        .run();
    if (writer_->changes() == 0) {
      writer_->statement(sql::kMarkIfUnreferenced).bind(r.created_ts, r.blob.sha256).run();
    }
    auto there = select_thumbnail(*writer_, r.key);
    tx.commit();
    return there;
  });
  if (!stored) return stored.error();
  if (!*stored) return sql::lease_lost();
  return std::move(**stored);
}

Result<bool> SqliteMetadataStore::delete_media(const MediaKey& key, std::int64_t now) {
  std::lock_guard lock(writer_mutex_);
  return guarded("delete_media", [&] {
    Transaction tx(*writer_);
    auto& q = writer_->statement("SELECT sha256 FROM media WHERE server_name = ? AND media_id = ?");
    q.bind(key.server_name, key.media_id);
    if (!q.step()) return false;
    std::vector<std::string> blobs;
    if (!q.is_null(0)) blobs.push_back(q.text(0));
    q.reset();
    auto& thumbnails =
        writer_->statement("SELECT sha256 FROM thumbnails WHERE server_name = ? AND media_id = ?");
    thumbnails.bind(key.server_name, key.media_id);
    while (thumbnails.step()) blobs.push_back(thumbnails.text(0));
    for (const char* table : {"DELETE FROM media WHERE server_name = ? AND media_id = ?",
                              "DELETE FROM thumbnails WHERE server_name = ? AND media_id = ?"}) {
      writer_->statement(table).bind(key.server_name, key.media_id).run();
    }
    for (const auto& sha256 : blobs) {
      writer_->statement(sql::kMarkIfUnreferenced).bind(now, sha256).run();
    }
    tx.commit();
    return true;
  });
}

Result<std::optional<std::int64_t>> SqliteMetadataStore::lease_blob(
    const std::string& sha256, std::int64_t expires_ts, const std::optional<BlobToStore>& storing) {
  std::lock_guard lock(writer_mutex_);
  return guarded("lease_blob", [&]() -> std::optional<std::int64_t> {
    NotDurable not_durable(*writer_);
    Transaction tx(*writer_);
    auto& q = writer_->statement("SELECT deleting_since_ts FROM blobs WHERE sha256 = ?");
    q.bind(sha256);
    bool deleting = q.step() && !q.is_null(0);
    q.reset();
    if (deleting) return std::nullopt;
    if (storing) {
      writer_->statement(sql::kInsertBlobToStore)
          .bind(sha256, static_cast<std::int64_t>(storing->blob.size), storing->store,
                storing->now)
          .run();
    }
    writer_->statement("INSERT INTO blob_leases (sha256, expires_ts) VALUES (?, ?)")
        .bind(sha256, expires_ts)
        .run();
    std::int64_t lease = writer_->last_insert_rowid();
    tx.commit();
    return lease;
  });
}

Status SqliteMetadataStore::release_lease(std::int64_t lease) {
  std::lock_guard lock(writer_mutex_);
  return guarded("release_lease", [&] {
    NotDurable not_durable(*writer_);
    writer_->statement("DELETE FROM blob_leases WHERE id = ?").bind(lease).run();
  });
}

Result<std::vector<MetadataStore::DoomedBlob>> SqliteMetadataStore::claim_unreferenced_blobs(
    std::int64_t now, std::int64_t reclaim_before_ts, std::size_t limit) {
  static const std::string query =
      std::string(sql::kDoomedBlobColumns) +
      "WHERE (b.unreferenced_since_ts IS NOT NULL AND b.deleting_since_ts IS NULL AND" +
      sql::kNothingRefersToBlob + ") OR b.deleting_since_ts < ? LIMIT ?";
  std::lock_guard lock(writer_mutex_);
  return guarded("claim_unreferenced_blobs", [&] {
    Transaction tx(*writer_);
    writer_->statement("DELETE FROM blob_leases WHERE expires_ts <= ?").bind(now).run();
    auto& q = writer_->statement(query.c_str());
    q.bind(reclaim_before_ts, static_cast<std::int64_t>(limit));
    std::vector<DoomedBlob> doomed;
    while (q.step()) doomed.push_back(sql::read_doomed_blob(q));
    auto& claim = writer_->statement("UPDATE blobs SET deleting_since_ts = ? WHERE sha256 = ?");
    for (const auto& d : doomed) claim.bind(now, d.blob.sha256).run();
    tx.commit();
    return doomed;
  });
}

Status SqliteMetadataStore::finish_blob_deletion(const std::string& sha256) {
  std::lock_guard lock(writer_mutex_);
  return guarded("finish_blob_deletion", [&] {
    writer_->statement("DELETE FROM blobs WHERE sha256 = ? AND deleting_since_ts IS NOT NULL")
        .bind(sha256)
        .run();
  });
}

Status SqliteMetadataStore::abandon_blob_deletion(const std::string& sha256) {
  std::lock_guard lock(writer_mutex_);
  return guarded("abandon_blob_deletion", [&] {
    writer_->statement("UPDATE blobs SET deleting_since_ts = NULL WHERE sha256 = ?")
        .bind(sha256)
        .run();
  });
}

Result<MetadataStore::BlobReplacement> SqliteMetadataStore::replace_blob(const std::string& old_id,
                                                                      const BlobId& hashed) {
  if (auto invalid = sql::invalid_replacement(old_id, hashed)) return *invalid;
  std::lock_guard lock(writer_mutex_);
  // The write lock, taken up front, keeps claims out until the records have moved.
  auto outcome = guarded("replace_blob", [&]() -> std::optional<BlobReplacement> {
    Transaction tx(*writer_);
    // deleting: nullopt when there is no such blob.
    auto deletion_state = [&](const std::string& sha256) -> std::optional<bool> {
      auto& q = writer_->statement(sql::kBlobDeletionState);
      q.bind(sha256);
      if (!q.step()) return std::nullopt;
      bool deleting = !q.is_null(0);
      q.reset();
      return deleting;
    };
    auto repoint = [&] {
      int moved = 0;
      for (const char* statement : {sql::kRepointMedia, sql::kRepointThumbnails}) {
        writer_->statement(statement).bind(hashed.sha256, old_id).run();
        moved += writer_->changes();
      }
      return moved;
    };
    auto old_deleting = deletion_state(old_id);
    if (!old_deleting || *old_deleting) return BlobReplacement::not_found;
    auto target_deleting = deletion_state(hashed.sha256);
    if (target_deleting && *target_deleting) return std::nullopt;
    BlobReplacement outcome;
    if (target_deleting) {
      if (repoint() > 0) writer_->statement(sql::kMarkReferenced).bind(hashed.sha256).run();
      writer_->statement(sql::kMarkIfUnreferenced).bind(now_ms(), old_id).run();
      outcome = BlobReplacement::merged;
    } else {
      // The new row first and the old one last: records always refer to a row that exists.
      writer_->statement(sql::kCopyBlobAs).bind(hashed.sha256, old_id).run();
      repoint();
      writer_->statement(sql::kDeleteBlob).bind(old_id).run();
      outcome = BlobReplacement::replaced;
    }
    tx.commit();
    return outcome;
  });
  if (!outcome) return outcome.error();
  if (!*outcome) return sql::replacement_being_deleted();
  return **outcome;
}

Result<std::vector<MetadataStore::BlobRow>> SqliteMetadataStore::list_blobs(
    const std::string& after_sha256, std::size_t limit) {
  std::lock_guard lock(reader_mutex_);
  return guarded("list_blobs", [&] {
    auto& q = reader_->statement(sql::kListBlobs);
    q.bind(after_sha256, static_cast<std::int64_t>(limit));
    std::vector<BlobRow> rows;
    while (q.step()) rows.push_back(sql::read_blob_row(q));
    return rows;
  });
}

Result<std::vector<MediaRecord>> SqliteMetadataStore::list_media(const MediaKey& after,
                                                                 std::size_t limit) {
  static const std::string query = std::string(sql::kSelectMedia) +
                                   "WHERE (m.server_name, m.media_id) > (?, ?) "
                                   "ORDER BY m.server_name, m.media_id LIMIT ?";
  std::lock_guard lock(reader_mutex_);
  return guarded("list_media", [&] {
    auto& q = reader_->statement(query.c_str());
    q.bind(after.server_name, after.media_id, static_cast<std::int64_t>(limit));
    std::vector<MediaRecord> records;
    while (q.step()) records.push_back(sql::read_media(q));
    return records;
  });
}

Result<std::size_t> SqliteMetadataStore::add_blobs(const std::vector<BlobRow>& rows) {
  std::lock_guard lock(writer_mutex_);
  return guarded("add_blobs", [&] {
    Transaction tx(*writer_);
    std::size_t added = 0;
    auto& insert = writer_->statement(sql::kCopyBlob);
    for (const auto& b : rows) {
      insert.bind(b.blob.sha256, static_cast<std::int64_t>(b.blob.size), b.store, b.created_ts,
                  b.unreferenced_since_ts, sql::location_column(b.blob)).run();
      added += static_cast<std::size_t>(writer_->changes());
    }
    tx.commit();
    return added;
  });
}

Result<std::size_t> SqliteMetadataStore::add_media(const std::vector<MediaRecord>& records) {
  std::lock_guard lock(writer_mutex_);
  return guarded("add_media", [&] {
    Transaction tx(*writer_);
    std::size_t added = 0;
    auto& insert = writer_->statement(
        "INSERT INTO media (server_name, media_id, sha256, content_type, upload_name, uploader, "
        "created_ts, last_access_ts, pending_expires_ts, quarantined) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (server_name, media_id) DO NOTHING");
    for (const auto& r : records) {
      std::optional<std::string> sha256;
      if (r.blob) sha256 = r.blob->sha256;
      insert.bind(r.key.server_name, r.key.media_id, sha256, r.content_type, r.upload_name,
                  r.uploader, r.created_ts, r.last_access_ts, r.pending_expires_ts,
                  r.quarantined).run();
      added += static_cast<std::size_t>(writer_->changes());
    }
    tx.commit();
    return added;
  });
}

Result<std::vector<ThumbnailRecord>> SqliteMetadataStore::list_thumbnails(
    const ThumbnailKey& after, std::size_t limit) {
  static const std::string query = std::string(sql::kSelectThumbnail) + sql::kListThumbnailsWhere;
  std::lock_guard lock(reader_mutex_);
  return guarded("list_thumbnails", [&] {
    auto& q = reader_->statement(query.c_str());
    q.bind(after.media.server_name, after.media.media_id, static_cast<std::int64_t>(after.width),
           static_cast<std::int64_t>(after.height), sql::method_name(after), after.animated,
           static_cast<std::int64_t>(limit));
    std::vector<ThumbnailRecord> records;
    while (q.step()) records.push_back(sql::read_thumbnail(q));
    return records;
  });
}

Result<std::size_t> SqliteMetadataStore::add_thumbnails(const std::vector<ThumbnailRecord>& records) {
  std::lock_guard lock(writer_mutex_);
  return guarded("add_thumbnails", [&] {
    Transaction tx(*writer_);
    std::size_t added = 0;
    auto& insert = writer_->statement(sql::kCopyThumbnail);
    for (const auto& r : records) {
      insert.bind(r.key.media.server_name, r.key.media.media_id,
                  static_cast<std::int64_t>(r.key.width), static_cast<std::int64_t>(r.key.height),
                  sql::method_name(r.key), r.key.animated, r.blob.sha256, r.content_type,
                  r.created_ts).run();
      added += static_cast<std::size_t>(writer_->changes());
    }
    tx.commit();
    return added;
  });
}

Result<MetadataStore::RowCounts> SqliteMetadataStore::count_rows() {
  std::lock_guard lock(reader_mutex_);
  return guarded("count_rows", [&] {
    auto& q = reader_->statement("SELECT (SELECT COUNT(*) FROM blobs), (SELECT COUNT(*) FROM media), "
                                 "(SELECT COUNT(*) FROM thumbnails)");
    q.bind();
    q.step();
    RowCounts counts{q.integer(0), q.integer(1), q.integer(2)};
    q.reset();
    return counts;
  });
}

Status SqliteMetadataStore::record_access(const std::vector<AccessTime>& accesses) {
  std::lock_guard lock(writer_mutex_);
  return guarded("record_access", [&] {
    Transaction tx(*writer_);
    auto& update = writer_->statement(
        "UPDATE media SET last_access_ts = MAX(COALESCE(last_access_ts, 0), ?) "
        "WHERE server_name = ? AND media_id = ?");
    for (const auto& a : accesses) update.bind(a.ts, a.key.server_name, a.key.media_id).run();
    tx.commit();
  });
}

Result<int> SqliteMetadataStore::delete_expired_pending(std::int64_t now) {
  std::lock_guard lock(writer_mutex_);
  return guarded("delete_expired_pending", [&] {
    writer_->statement("DELETE FROM media WHERE sha256 IS NULL AND pending_expires_ts <= ?")
        .bind(now)
        .run();
    return writer_->changes();
  });
}

Status SqliteMetadataStore::ping() {
  std::lock_guard lock(reader_mutex_);
  return guarded("ping", [&] {
    auto& q = reader_->statement("SELECT 1");
    q.bind();
    q.run();
  });
}

}  // namespace mxcd
