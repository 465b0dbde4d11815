#include "meta/postgres/postgres_metadata_store.hpp"

#include "core/clock.hpp"
#include "meta/postgres/pg_connection.hpp"
#include "meta/sql_records.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <random>
#include <stdexcept>

namespace mxcd {

namespace {

// Each entry moves the schema one version up, with the same meaning as the SQLite store's
// version of the same number. Never edit an entry once released: add one.
constexpr const char* kMigrations[] = {
    // 1: blobs and media records.
    R"sql(
    CREATE TABLE blobs (
      sha256     TEXT PRIMARY KEY,   -- lower-case hex of the content's SHA-256
      size       BIGINT NOT NULL,
      store      TEXT NOT NULL,      -- the blob store that holds it
      created_ts BIGINT NOT NULL
    );
    CREATE TABLE media (
      server_name        TEXT NOT NULL,
      media_id           TEXT NOT NULL,
      sha256             TEXT REFERENCES blobs (sha256),  -- NULL while pending
      content_type       TEXT NOT NULL,
      upload_name        TEXT,
      uploader           TEXT NOT NULL,
      created_ts         BIGINT NOT NULL,
      last_access_ts     BIGINT,
      pending_expires_ts BIGINT,                          -- set while pending
      quarantined        BOOLEAN NOT NULL DEFAULT FALSE,
      PRIMARY KEY (server_name, media_id)
    );
    CREATE INDEX media_by_blob ON media (sha256);
    CREATE INDEX media_pending_by_uploader ON media (uploader, pending_expires_ts)
      WHERE sha256 IS NULL;
    )sql",
    // 2: deleting blobs whose last record is gone (see MetadataStore: leases).
    R"sql(
    ALTER TABLE blobs ADD COLUMN unreferenced_since_ts BIGINT;  -- NULL while a record refers to it
    ALTER TABLE blobs ADD COLUMN deleting_since_ts BIGINT;      -- set while its bytes are removed
    CREATE INDEX blobs_unreferenced ON blobs (unreferenced_since_ts)
      WHERE unreferenced_since_ts IS NOT NULL;
    CREATE TABLE blob_leases (
      id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      sha256     TEXT NOT NULL,
      expires_ts BIGINT NOT NULL
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
      animated     BOOLEAN NOT NULL,
      sha256       TEXT NOT NULL REFERENCES blobs (sha256),
      content_type TEXT NOT NULL,
      created_ts   BIGINT NOT NULL,
      PRIMARY KEY (server_name, media_id, width, height, method, animated)
    );
    CREATE INDEX thumbnails_by_blob ON thumbnails (sha256);
    )sql",
    // 4: blobs adopted in place (see BlobId::location).
    R"sql(
    ALTER TABLE blobs ADD COLUMN location TEXT;  -- the object's key; NULL: content-addressed
    )sql",
};

// The session advisory lock that lets one instance at a time migrate ("mxcd" in ASCII).
constexpr const char* kMigrationLock = "SELECT pg_advisory_lock(1836606308)";
constexpr const char* kMigrationUnlock = "SELECT pg_advisory_unlock(1836606308)";
// The channel on which changes are announced, payload "filled <server>/<media ID>" or
// "deleted <server>/<media ID>".
constexpr const char* kChangeChannel = "mxcd_media_changes";

void announce(PgConnection& c, const char* change, const MediaKey& key) {
  // Delivered to every instance's listener when the transaction commits.
  c.query("SELECT pg_notify($1, $2)", std::string(kChangeChannel),
          std::string(change) + " " + key.server_name + "/" + key.media_id);
}

std::optional<MetadataStore::MediaChange> parse_change(const std::string& payload) {
  using Kind = MetadataStore::MediaChange::Kind;
  auto space = payload.find(' ');
  // A media ID never contains '/', a server name may not either: split at the last.
  auto slash = payload.rfind('/');
  if (space == std::string::npos || slash == std::string::npos || slash < space) return std::nullopt;
  std::string kind = payload.substr(0, space);
  MediaKey key{payload.substr(space + 1, slash - space - 1), payload.substr(slash + 1)};
  if (kind == "filled") return MetadataStore::MediaChange{Kind::filled, std::move(key)};
  if (kind == "deleted") return MetadataStore::MediaChange{Kind::deleted, std::move(key)};
  return std::nullopt;
}

// A conflict is retried after a random pause whose ceiling doubles with each conflict (up to
// 64 ms): concurrent identical uploads all touch one blob row.
constexpr int kMaxConflictAttempts = 30;
// A lost connection is retried on a new one; when that fails too, the database is down.
constexpr int kMaxConnectionAttempts = 2;
// The server stopped a statement at its statement_timeout (or an operator cancelled it).
constexpr const char* kQueryCanceled = "57014";

MatrixError unavailable() { return MatrixError::unavailable("The database is unavailable"); }

void pause_after_conflict(int attempt) {
  thread_local std::minstd_rand random(std::random_device{}());
  int ceiling_ms = 1 << std::min(attempt, 6);
  std::this_thread::sleep_for(std::chrono::microseconds(random() % (ceiling_ms * 1000)));
}

PgTimeouts pool_timeouts(const Config::Database::Postgres& config) {
  return PgTimeouts{config.connect_timeout, config.statement_timeout, config.network_timeout};
}

}  // namespace

// At most `size` connections; callers beyond that wait for one to come back, for a while.
// A server that did not answer (a statement or a connection attempt timed out, or was
// refused) is probed by one caller at a time: the others fail at once instead of each
// waiting out a timeout of its own, so a frozen database costs a request milliseconds, not
// seconds, and the few blocking threads stay free for the work that needs no database.
class PgPool {
 public:
  PgPool(std::string conninfo, unsigned size, PgTimeouts timeouts,
         std::chrono::milliseconds acquire_timeout)
      : conninfo_(std::move(conninfo)),
        size_(size),
        timeouts_(timeouts),
        acquire_timeout_(acquire_timeout) {}

  class Lease {
   public:
    Lease(PgPool& pool, std::unique_ptr<PgConnection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    ~Lease() { pool_.give_back(std::move(connection_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    PgConnection& operator*() { return *connection_; }
    PgConnection* operator->() { return connection_.get(); }

   private:
    PgPool& pool_;
    std::unique_ptr<PgConnection> connection_;
  };

  Lease acquire() {
    std::unique_lock lock(mutex_);
    bool free = returned_.wait_for(lock, acquire_timeout_,
                                   [&] { return !idle_.empty() || open_ < size_; });
    if (!free) {
      throw PgError("all " + std::to_string(size_) + " database connections are busy", "", false);
    }
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(connection));
    }
    if (unreachable_ && probing_) {
      throw PgError("PostgreSQL cannot be reached (a new connection is being tried)", "", true,
                    true);
    }
    const bool probe = unreachable_;
    probing_ = probing_ || probe;
    ++open_;
    lock.unlock();
    try {
      auto connection = std::make_unique<PgConnection>(conninfo_, timeouts_);
      lock.lock();
      if (probe) probing_ = false;
      if (unreachable_) spdlog::info("database: PostgreSQL answers again");
      unreachable_ = false;
      return Lease(*this, std::move(connection));
    } catch (const std::exception& e) {
      if (!lock.owns_lock()) lock.lock();
      if (probe) probing_ = false;
      // Refused, timed out or failed midway: probe before trying again.
      mark_unreachable(e.what());
      --open_;
      returned_.notify_one();
      throw;
    }
  }

  // After a lost connection the others are likely lost too (the server restarted): close
  // the idle ones rather than fail on each in turn.
  void drop_idle() {
    std::lock_guard lock(mutex_);
    open_ -= static_cast<unsigned>(idle_.size());
    idle_.clear();
    returned_.notify_all();
  }

  // The server did not answer a statement in time: new connections wait for a probe.
  void not_answering(const char* why) {
    std::lock_guard lock(mutex_);
    mark_unreachable(why);
  }

 private:
  void give_back(std::unique_ptr<PgConnection> connection) {
    // A connection left inside a transaction (an exception mid-way) is rolled back first.
    if (connection && connection->usable() &&
        PQtransactionStatus(connection->native()) != PQTRANS_IDLE) {
      try {
        connection->exec("ROLLBACK");
      } catch (const PgError&) {
      }
    }
    std::lock_guard lock(mutex_);
    // While the server is not answering, a connection kept would only wait out a statement
    // timeout when next used: the probe decides when connections are worth keeping again.
    if (connection && connection->usable() && !unreachable_) {
      idle_.push_back(std::move(connection));
    } else {
      --open_;
    }
    returned_.notify_one();
  }

  // Said once per outage: while it lasts, failures are logged at debug level only.
  void mark_unreachable(const char* why) {
    if (!unreachable_) spdlog::error("database: PostgreSQL cannot be reached: {}", why);
    unreachable_ = true;
  }

  const std::string conninfo_;
  const unsigned size_;
  const PgTimeouts timeouts_;
  const std::chrono::milliseconds acquire_timeout_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  unsigned open_ = 0;  // idle and leased
  bool unreachable_ = false;  // the last connection attempt or statement got no answer
  bool probing_ = false;      // a connection attempt is under way while unreachable_
};

PostgresMetadataStore::PostgresMetadataStore(const Config::Database::Postgres& config)
    : config_(config),
      pool_(std::make_unique<PgPool>(config.conninfo, config.pool_size, pool_timeouts(config),
                                     config.acquire_timeout)) {
  try {
    migrate();
  } catch (const PgError& e) {
    throw std::runtime_error(std::string("PostgreSQL: ") + e.what());
  }
}

PostgresMetadataStore::~PostgresMetadataStore() { stop_watching(); }

void PostgresMetadataStore::stop_watching() {
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_signal_.notify_all();
  if (listener_.joinable()) listener_.join();
}

int PostgresMetadataStore::schema_version() { return static_cast<int>(std::size(kMigrations)); }

void PostgresMetadataStore::migrate() {
  // A connection of its own, without a statement bound: waiting for another instance's
  // migration, or migrating a large table, may take long.
  PgTimeouts unbounded = pool_timeouts(config_);
  unbounded.statement = std::chrono::milliseconds(0);
  PgConnection c(config_.conninfo, unbounded);
  // Instances that start together queue here; each finds the schema as the one before left it.
  c.exec(kMigrationLock);
  struct Unlock {
    PgConnection& c;
    ~Unlock() {
      try {
        c.exec(kMigrationUnlock);
      } catch (const PgError&) {
      }
    }
  } unlock{c};
  c.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  auto current = c.query("SELECT version FROM schema_version");
  int version = current.rows() ? static_cast<int>(current.integer(0, 0)) : 0;
  const int latest = schema_version();
  if (version > latest) {
    throw std::runtime_error("the PostgreSQL database has schema version " +
                             std::to_string(version) + ", newer than this mxcd understands (" +
                             std::to_string(latest) + "): run a newer mxcd");
  }
  for (; version < latest; ++version) {
    c.exec("BEGIN");
    c.exec(kMigrations[version]);
    c.exec("DELETE FROM schema_version");
    c.query("INSERT INTO schema_version (version) VALUES ($1)", version + 1);
    c.exec("COMMIT");
    spdlog::info("database migrated to schema version {}", version + 1);
  }
}

template <class F>
auto PostgresMetadataStore::transaction(const char* operation, Isolation isolation, F&& f)
    -> Result<decltype(f(std::declval<PgConnection&>()))> {
  using T = decltype(f(std::declval<PgConnection&>()));
  int conflicts = 0;
  int connection_losses = 0;
  while (true) {
    try {
      auto c = pool_->acquire();
      // One statement is a transaction of its own: no BEGIN and COMMIT round trips.
      const bool explicit_transaction = isolation != Isolation::single_statement;
      if (explicit_transaction) {
        c->exec(isolation == Isolation::serializable ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
                                                     : "BEGIN");
      }
      if constexpr (std::is_void_v<T>) {
        f(*c);
        if (explicit_transaction) c->exec("COMMIT");
        return {};
      } else {
        T value = f(*c);
        if (explicit_transaction) c->exec("COMMIT");
        return value;
      }
    } catch (const PgError& e) {
      if (e.conflict() && ++conflicts < kMaxConflictAttempts) {
        pause_after_conflict(conflicts);
        continue;
      }
      if (e.connection_lost) {
        pool_->drop_idle();
        // A connection found broken is tried again on a new one; a server that did not
        // answer in time would only be waited for again.
        if (!e.unreachable && ++connection_losses < kMaxConnectionAttempts) continue;
        if (e.unreachable) {
          pool_->not_answering(e.what());  // the pool logs the outage once
          spdlog::debug("database: {} failed: {}", operation, e.what());
        } else {
          spdlog::error("database: {} failed: {}", operation, e.what());
        }
        return unavailable();
      }
      if (e.sqlstate == kQueryCanceled) {
        spdlog::error("database: {} failed: {}", operation, e.what());
        return unavailable();
      }
      if (e.conflict()) {
        spdlog::warn("database: {} gave up after {} conflicts", operation, conflicts);
        return MatrixError::unavailable("The database is busy; please try again");
      }
      spdlog::error("database: {} failed: {}", operation, e.what());
      if (e.sqlstate.empty()) return unavailable();  // the pool is exhausted
      return MatrixError::internal("Database error");
    }
  }
}

Result<std::optional<MediaRecord>> PostgresMetadataStore::find_media(const MediaKey& key) {
  static const std::string query =
      std::string(sql::kSelectMedia) + "WHERE m.server_name = $1 AND m.media_id = $2";
  return transaction("find_media", Isolation::single_statement,
                     [&](PgConnection& c) -> std::optional<MediaRecord> {
    auto q = c.query(query.c_str(), key.server_name, key.media_id);
    if (q.rows() == 0) return std::nullopt;
    return sql::read_media(q.row(0));
  });
}

namespace {

// Records the blob for a new record, consuming the upload's lease. False when the lease is
// gone (it expired and a deletion may have taken the bytes); nothing is written then.
bool insert_blob(PgConnection& c, const BlobId& blob, const std::string& store,
                 std::int64_t lease, std::int64_t now) {
  if (c.query("DELETE FROM blob_leases WHERE id = $1", lease).affected() == 0) return false;
  c.query("INSERT INTO blobs (sha256, size, store, created_ts) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT (sha256) DO UPDATE SET unreferenced_since_ts = NULL "
          "WHERE blobs.unreferenced_since_ts IS NOT NULL",
          blob.sha256, static_cast<std::int64_t>(blob.size), store, now);
  return true;
}

}  // namespace

Status PostgresMetadataStore::insert_media(const MediaRecord& r, std::int64_t lease) {
  auto inserted = transaction("insert_media", Isolation::serializable, [&](PgConnection& c) {
    if (!insert_blob(c, *r.blob, r.store, lease, r.created_ts)) return false;
    c.query("INSERT INTO media (server_name, media_id, sha256, content_type, upload_name, "
            "uploader, created_ts, quarantined) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            r.key.server_name, r.key.media_id, r.blob->sha256, r.content_type, r.upload_name,
            r.uploader, r.created_ts, r.quarantined);
    return true;
  });
  if (!inserted) return inserted.error();
  if (!*inserted) return sql::lease_lost();
  return {};
}

Result<MetadataStore::Reservation> PostgresMetadataStore::reserve_pending(const MediaRecord& r,
                                                                          unsigned max_pending,
                                                                          std::int64_t now) {
  return transaction("reserve_pending", Isolation::serializable, [&](PgConnection& c) -> Reservation {
    auto count = c.query(
        "SELECT COUNT(*), MIN(pending_expires_ts) FROM media "
        "WHERE uploader = $1 AND sha256 IS NULL AND pending_expires_ts > $2",
        r.uploader, now);
    std::int64_t open = count.integer(0, 0);
    std::int64_t oldest = count.is_null(0, 1) ? now : count.integer(0, 1);
    if (open >= static_cast<std::int64_t>(max_pending)) return {false, oldest};
    c.query("INSERT INTO media (server_name, media_id, content_type, uploader, created_ts, "
            "pending_expires_ts) VALUES ($1, $2, $3, $4, $5, $6)",
            r.key.server_name, r.key.media_id, r.content_type, r.uploader, r.created_ts,
            r.pending_expires_ts);
    return {true, 0};
  });
}

Result<MetadataStore::FillOutcome> PostgresMetadataStore::fill_pending(const MediaRecord& r,
                                                                       std::int64_t lease,
                                                                       std::int64_t now) {
  auto outcome = transaction("fill_pending", Isolation::serializable,
                             [&](PgConnection& c) -> std::optional<FillOutcome> {
    auto q = c.query("SELECT sha256, uploader, pending_expires_ts FROM media "
                     "WHERE server_name = $1 AND media_id = $2",
                     r.key.server_name, r.key.media_id);
    if (q.rows() == 0) return FillOutcome::not_found;
    bool filled = !q.is_null(0, 0);
    std::string uploader = q.text(0, 1);
    auto expires = q.optional_integer(0, 2);
    if (filled) return uploader == r.uploader ? FillOutcome::already_filled : FillOutcome::forbidden;
    if (!expires || *expires <= now) return FillOutcome::not_found;
    if (uploader != r.uploader) return FillOutcome::forbidden;
    if (!insert_blob(c, *r.blob, r.store, lease, now)) return std::nullopt;
    c.query("UPDATE media SET sha256 = $1, content_type = $2, upload_name = $3, "
            "pending_expires_ts = NULL WHERE server_name = $4 AND media_id = $5",
            r.blob->sha256, r.content_type, r.upload_name, r.key.server_name, r.key.media_id);
    announce(c, "filled", r.key);
    return FillOutcome::filled;
  });
  if (!outcome) return outcome.error();
  if (!*outcome) return sql::lease_lost();
  return **outcome;
}

Result<std::optional<ThumbnailRecord>> PostgresMetadataStore::find_thumbnail(
    const ThumbnailKey& key) {
  static const std::string query =
      std::string(sql::kSelectThumbnail) +
      "WHERE t.server_name = $1 AND t.media_id = $2 AND t.width = $3 AND t.height = $4 "
      "AND t.method = $5 AND t.animated = $6";
  return transaction("find_thumbnail", Isolation::single_statement,
                     [&](PgConnection& c) -> std::optional<ThumbnailRecord> {
    auto q = c.query(query.c_str(), key.media.server_name, key.media.media_id,
                     static_cast<std::int64_t>(key.width), static_cast<std::int64_t>(key.height),
                     sql::method_name(key), key.animated);
    if (q.rows() == 0) return std::nullopt;
    return sql::read_thumbnail(q.row(0));
  });
}

Result<std::optional<ThumbnailRecord>> PostgresMetadataStore::insert_thumbnail(
    const ThumbnailRecord& r, std::int64_t lease) {
  auto stored = transaction("insert_thumbnail", Isolation::serializable, [&](PgConnection& c) {
    if (!insert_blob(c, r.blob, r.store, lease, r.created_ts)) return false;
    auto added = c.query(
        sql::kInsertThumbnail,
        r.key.media.server_name, r.key.media.media_id, static_cast<std::int64_t>(r.key.width),
        static_cast<std::int64_t>(r.key.height), sql::method_name(r.key), r.key.animated,
        r.blob.sha256, r.content_type, r.created_ts);
    if (added.affected() == 0) c.query(sql::kMarkIfUnreferenced, r.created_ts, r.blob.sha256);
    return true;
  });
  if (!stored) return stored.error();
  if (!*stored) return sql::lease_lost();
  return find_thumbnail(r.key);
}

Result<bool> PostgresMetadataStore::delete_media(const MediaKey& key, std::int64_t now) {
  return transaction("delete_media", Isolation::serializable, [&](PgConnection& c) {
    auto deleted = c.query("DELETE FROM media WHERE server_name = $1 AND media_id = $2 "
                           "RETURNING sha256",
                           key.server_name, key.media_id);
    if (deleted.rows() == 0) return false;
    announce(c, "deleted", key);  // other instances may hold the record in their caches
    auto thumbnails = c.query("DELETE FROM thumbnails WHERE server_name = $1 AND media_id = $2 "
                              "RETURNING sha256",
                              key.server_name, key.media_id);
    if (auto sha256 = deleted.optional_text(0, 0)) c.query(sql::kMarkIfUnreferenced, now, *sha256);
    for (int row = 0; row < thumbnails.rows(); ++row) {
      c.query(sql::kMarkIfUnreferenced, now, thumbnails.text(row, 0));
    }
    return true;
  });
}

Result<std::optional<std::int64_t>> PostgresMetadataStore::lease_blob(
    const std::string& sha256, std::int64_t expires_ts, const std::optional<BlobToStore>& storing) {
  return transaction("lease_blob", Isolation::serializable,
                     [&](PgConnection& c) -> std::optional<std::int64_t> {
    // A lease need not survive a crash: whoever holds it dies with the process.
    c.exec("SET LOCAL synchronous_commit = off");
    auto blob = c.query("SELECT deleting_since_ts FROM blobs WHERE sha256 = $1", sha256);
    if (blob.rows() > 0 && !blob.is_null(0, 0)) return std::nullopt;
    if (storing && blob.rows() == 0) {
      c.query(sql::kInsertBlobToStore, sha256, static_cast<std::int64_t>(storing->blob.size),
              storing->store, storing->now);
    }
    auto lease = c.query("INSERT INTO blob_leases (sha256, expires_ts) VALUES ($1, $2) RETURNING id",
                         sha256, expires_ts);
    return lease.integer(0, 0);
  });
}

Status PostgresMetadataStore::release_lease(std::int64_t lease) {
  return transaction("release_lease", Isolation::read_committed, [&](PgConnection& c) {
    c.exec("SET LOCAL synchronous_commit = off");
    c.query("DELETE FROM blob_leases WHERE id = $1", lease);
  });
}

Result<std::vector<MetadataStore::DoomedBlob>> PostgresMetadataStore::claim_unreferenced_blobs(
    std::int64_t now, std::int64_t reclaim_before_ts, std::size_t limit) {
  // SKIP LOCKED: another instance's claim takes what it has locked; this one the rest.
  static const std::string query =
      std::string(sql::kDoomedBlobColumns) +
      "WHERE (b.unreferenced_since_ts IS NOT NULL AND b.deleting_since_ts IS NULL AND" +
      sql::kNothingRefersToBlob + ") OR b.deleting_since_ts < $1 LIMIT $2 FOR UPDATE SKIP LOCKED";
  return transaction("claim_unreferenced_blobs", Isolation::serializable, [&](PgConnection& c) {
    c.query("DELETE FROM blob_leases WHERE expires_ts <= $1", now);
    auto q = c.query(query.c_str(), reclaim_before_ts, static_cast<std::int64_t>(limit));
    std::vector<DoomedBlob> doomed;
    for (int row = 0; row < q.rows(); ++row) {
      doomed.push_back(sql::read_doomed_blob(q.row(row)));
      c.query("UPDATE blobs SET deleting_since_ts = $1 WHERE sha256 = $2", now, q.text(row, 0));
    }
    return doomed;
  });
}

Status PostgresMetadataStore::finish_blob_deletion(const std::string& sha256) {
  return transaction("finish_blob_deletion", Isolation::serializable, [&](PgConnection& c) {
    c.query("DELETE FROM blobs WHERE sha256 = $1 AND deleting_since_ts IS NOT NULL", sha256);
  });
}

Status PostgresMetadataStore::abandon_blob_deletion(const std::string& sha256) {
  return transaction("abandon_blob_deletion", Isolation::serializable, [&](PgConnection& c) {
    c.query("UPDATE blobs SET deleting_since_ts = NULL WHERE sha256 = $1", sha256);
  });
}

Result<MetadataStore::BlobReplacement> PostgresMetadataStore::replace_blob(
    const std::string& old_id, const BlobId& hashed) {
  if (auto invalid = sql::invalid_replacement(old_id, hashed)) return *invalid;
  static const std::string repoint_media = std::string(sql::kRepointMedia) +
                                           " RETURNING server_name, media_id";
  // Serializable: a claim of either blob that overlaps this transaction makes one of the two
  // fail and run again, so records never move onto a blob whose deletion began.
  auto outcome = transaction("replace_blob", Isolation::serializable,
                             [&](PgConnection& c) -> std::optional<BlobReplacement> {
    auto old_blob = c.query(sql::kBlobDeletionState, old_id);
    if (old_blob.rows() == 0 || !old_blob.is_null(0, 0)) return BlobReplacement::not_found;
    auto target = c.query(sql::kBlobDeletionState, hashed.sha256);
    if (target.rows() > 0 && !target.is_null(0, 0)) return std::nullopt;
    auto repoint = [&] {
      auto media = c.query(repoint_media.c_str(), hashed.sha256, old_id);
      // Instances holding a moved record in their caches must read it again.
      for (int row = 0; row < media.rows(); ++row) {
        announce(c, "deleted", MediaKey{media.text(row, 0), media.text(row, 1)});
      }
      return media.affected() + c.query(sql::kRepointThumbnails, hashed.sha256, old_id).affected();
    };
    if (target.rows() > 0) {
      if (repoint() > 0) c.query(sql::kMarkReferenced, hashed.sha256);
      c.query(sql::kMarkIfUnreferenced, now_ms(), old_id);
      return BlobReplacement::merged;
    }
    // The new row first and the old one last: records always refer to a row that exists.
    c.query(sql::kCopyBlobAs, hashed.sha256, old_id);
    repoint();
    c.query(sql::kDeleteBlob, old_id);
    return BlobReplacement::replaced;
  });
  if (!outcome) return outcome.error();
  if (!*outcome) return sql::replacement_being_deleted();
  return **outcome;
}

Result<std::vector<MetadataStore::BlobRow>> PostgresMetadataStore::list_blobs(
    const std::string& after_sha256, std::size_t limit) {
  return transaction("list_blobs", Isolation::single_statement, [&](PgConnection& c) {
    auto q = c.query(sql::kListBlobs, after_sha256, static_cast<std::int64_t>(limit));
    std::vector<BlobRow> rows;
    for (int row = 0; row < q.rows(); ++row) rows.push_back(sql::read_blob_row(q.row(row)));
    return rows;
  });
}

Result<std::vector<MediaRecord>> PostgresMetadataStore::list_media(const MediaKey& after,
                                                                   std::size_t limit) {
  static const std::string query = std::string(sql::kSelectMedia) +
                                   "WHERE (m.server_name, m.media_id) > ($1, $2) "
                                   "ORDER BY m.server_name, m.media_id LIMIT $3";
  return transaction("list_media", Isolation::single_statement, [&](PgConnection& c) {
    auto q = c.query(query.c_str(), after.server_name, after.media_id,
                     static_cast<std::int64_t>(limit));
    std::vector<MediaRecord> records;
    for (int row = 0; row < q.rows(); ++row) records.push_back(sql::read_media(q.row(row)));
    return records;
  });
}

Result<std::size_t> PostgresMetadataStore::add_blobs(const std::vector<BlobRow>& rows) {
  return transaction("add_blobs", Isolation::read_committed, [&](PgConnection& c) {
    std::size_t added = 0;
    for (const auto& b : rows) {
      added += static_cast<std::size_t>(
          c.query(sql::kCopyBlob, b.blob.sha256, static_cast<std::int64_t>(b.blob.size), b.store,
                  b.created_ts, b.unreferenced_since_ts, sql::location_column(b.blob))
              .affected());
    }
    return added;
  });
}

Result<std::size_t> PostgresMetadataStore::add_media(const std::vector<MediaRecord>& records) {
  return transaction("add_media", Isolation::read_committed, [&](PgConnection& c) {
    std::size_t added = 0;
    for (const auto& r : records) {
      std::optional<std::string> sha256;
      if (r.blob) sha256 = r.blob->sha256;
      added += static_cast<std::size_t>(
          c.query("INSERT INTO media (server_name, media_id, sha256, content_type, upload_name, "
                  "uploader, created_ts, last_access_ts, pending_expires_ts, quarantined) "
                  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                  "ON CONFLICT (server_name, media_id) DO NOTHING",
                  r.key.server_name, r.key.media_id, sha256, r.content_type, r.upload_name,
                  r.uploader, r.created_ts, r.last_access_ts, r.pending_expires_ts, r.quarantined)
              .affected());
    }
    return added;
  });
}

Result<std::vector<ThumbnailRecord>> PostgresMetadataStore::list_thumbnails(
    const ThumbnailKey& after, std::size_t limit) {
  static const std::string query = std::string(sql::kSelectThumbnail) + sql::kListThumbnailsWhere;
  return transaction("list_thumbnails", Isolation::single_statement, [&](PgConnection& c) {
    auto q = c.query(query.c_str(), after.media.server_name, after.media.media_id,
                     static_cast<std::int64_t>(after.width), static_cast<std::int64_t>(after.height),
                     sql::method_name(after), after.animated, static_cast<std::int64_t>(limit));
    std::vector<ThumbnailRecord> records;
    for (int row = 0; row < q.rows(); ++row) records.push_back(sql::read_thumbnail(q.row(row)));
    return records;
  });
}

Result<std::size_t> PostgresMetadataStore::add_thumbnails(
    const std::vector<ThumbnailRecord>& records) {
  return transaction("add_thumbnails", Isolation::read_committed, [&](PgConnection& c) {
    std::size_t added = 0;
    for (const auto& r : records) {
      added += static_cast<std::size_t>(
          c.query(sql::kCopyThumbnail, r.key.media.server_name, r.key.media.media_id,
                  static_cast<std::int64_t>(r.key.width), static_cast<std::int64_t>(r.key.height),
                  sql::method_name(r.key), r.key.animated, r.blob.sha256, r.content_type,
                  r.created_ts)
              .affected());
    }
    return added;
  });
}

Result<MetadataStore::RowCounts> PostgresMetadataStore::count_rows() {
  return transaction("count_rows", Isolation::single_statement, [&](PgConnection& c) {
    auto q = c.query("SELECT (SELECT COUNT(*) FROM blobs), (SELECT COUNT(*) FROM media), "
                     "(SELECT COUNT(*) FROM thumbnails)");
    return RowCounts{q.integer(0, 0), q.integer(0, 1), q.integer(0, 2)};
  });
}

Status PostgresMetadataStore::record_access(const std::vector<AccessTime>& accesses) {
  // Only ever moves a timestamp forward, so it needs no serializable isolation.
  return transaction("record_access", Isolation::read_committed, [&](PgConnection& c) {
    for (const auto& a : accesses) {
      c.query("UPDATE media SET last_access_ts = GREATEST(COALESCE(last_access_ts, 0), $1) "
              "WHERE server_name = $2 AND media_id = $3",
              a.ts, a.key.server_name, a.key.media_id);
    }
  });
}

Result<int> PostgresMetadataStore::delete_expired_pending(std::int64_t now) {
  // Atomic on its own, and the rows it removes can no longer change.
  return transaction("delete_expired_pending", Isolation::single_statement, [&](PgConnection& c) {
    return static_cast<int>(
        c.query("DELETE FROM media WHERE sha256 IS NULL AND pending_expires_ts <= $1", now)
            .affected());
  });
}

Status PostgresMetadataStore::ping() {
  return transaction("ping", Isolation::single_statement, [](PgConnection& c) { c.exec("SELECT 1"); });
}

void PostgresMetadataStore::watch_changes(std::function<void(const MediaChange&)> on_change) {
  listener_ = std::thread([this, on_change = std::move(on_change)] { listen(on_change); });
}

void PostgresMetadataStore::listen(const std::function<void(const MediaChange&)>& on_change) {
  constexpr auto kReconnectPause = std::chrono::seconds(1);
  constexpr int kPollMs = 250;  // how soon a stop is noticed
  bool lost = false;
  while (!stopping_) {
    std::unique_ptr<PgConnection> c;
    try {
      c = std::make_unique<PgConnection>(config_.conninfo, pool_timeouts(config_));
      c->exec((std::string("LISTEN ") + kChangeChannel).c_str());
    } catch (const PgError& e) {
      if (!lost) spdlog::warn("database notifications unavailable, retrying: {}", e.what());
      lost = true;
      std::unique_lock lock(stop_mutex_);
      stop_signal_.wait_for(lock, kReconnectPause, [&] { return stopping_.load(); });
      continue;
    }
    if (lost) {
      spdlog::info("database notifications are back");
      on_change({MediaChange::Kind::unknown, {}});  // changes made while nobody listened
      lost = false;
    }
    while (!stopping_ && c->usable()) {
      pollfd p{c->socket(), POLLIN, 0};
      int ready = ::poll(&p, 1, kPollMs);
      if (ready < 0 && errno != EINTR) break;
      if (ready <= 0) continue;
      if (!PQconsumeInput(c->native())) break;
      while (PGnotify* n = PQnotifies(c->native())) {
        auto change = parse_change(n->extra);
        PQfreemem(n);
        if (change) on_change(*change);
      }
    }
    if (!stopping_) {
      spdlog::warn("database notifications lost, reconnecting");
      lost = true;
    }
  }
}

}  // namespace mxcd
