#include "meta/postgres/postgres_backend.hpp"

#include "meta/postgres/pg_connection.hpp"
#include "meta/postgres/pg_pool.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <random>
#include <stdexcept>

namespace mxcd {

namespace {

// Each entry moves the schema one version up, with the same meaning as the SQLite backend's
// entry of the same number. Never edit an entry once released: add one.
constexpr const char* kMigrations[] = {
    // 1: blobs and media records.
    R"sql(
    CREATE TABLE blobs (
      sha256     TEXT PRIMARY KEY,   -- the blob's name: lower-case hex SHA-256, or unhashed-...
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
constexpr int kLatestVersion = static_cast<int>(std::size(kMigrations));
static_assert(kLatestVersion == sql::kSchemaVersion);

// The session advisory lock that lets one instance at a time migrate ("mxcd" in ASCII).
constexpr const char* kMigrationLock = "SELECT pg_advisory_lock(1836606308)";
constexpr const char* kMigrationUnlock = "SELECT pg_advisory_unlock(1836606308)";
// The channel on which changes are announced, payload "filled <server>/<media ID>" or
// "deleted <server>/<media ID>".
constexpr const char* kChangeChannel = "mxcd_media_changes";

std::string change_payload(const MetadataStore::MediaChange& change) {
  const char* kind = change.kind == MetadataStore::MediaChange::Kind::filled ? "filled" : "deleted";
  return std::string(kind) + " " + change.key.server_name + "/" + change.key.media_id;
}

std::optional<MetadataStore::MediaChange> parse_change(const std::string& payload) {
  using Kind = MetadataStore::MediaChange::Kind;
  auto space = payload.find(' ');
  // A media ID never contains '/', a server name may not either: split at the last.
  auto slash = payload.rfind('/');
  if (space == std::string::npos || slash == std::string::npos || slash < space)
    return std::nullopt;
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

// A pooled connection inside the backend's transaction.
class PgSession final : public sql::Session {
 public:
  explicit PgSession(PgConnection& c) : c_(c) {}

  sql::Rows run(const char* sql, std::initializer_list<sql::Value> parameters) override {
    std::vector<PgParam> params;
    params.reserve(parameters.size());
    for (const auto& p : parameters) {
      if (const auto* n = std::get_if<std::int64_t>(&p)) params.emplace_back(std::to_string(*n));
      else if (const auto* s = std::get_if<std::string>(&p)) params.emplace_back(*s);
      else params.emplace_back(std::nullopt);
    }
    PgResult result = c_.run(sql, params);
    const int rows = result.rows();
    const int columns = result.columns();
    std::vector<sql::Value> cells;
    cells.reserve(static_cast<std::size_t>(rows) * static_cast<std::size_t>(columns));
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < columns; ++c) {
        if (result.is_null(r, c)) cells.emplace_back();
        else cells.emplace_back(result.text(r, c));
      }
    }
    return sql::Rows(columns, std::move(cells), result.affected());
  }

  // Delivered to every instance's listener when the transaction commits.
  void announce(const MetadataStore::MediaChange& change) override {
    c_.query("SELECT pg_notify($1, $2)", std::string(kChangeChannel), change_payload(change));
  }

 private:
  PgConnection& c_;
};

}  // namespace

PostgresBackend::PostgresBackend(const Config::Database::Postgres& config, MetadataOpening opening)
    : config_(config),
      pool_(std::make_unique<PgPool>(config.conninfo, config.pool_size, pool_timeouts(config),
                                     config.acquire_timeout)) {
  if (opening == MetadataOpening::inspect) return;  // open_metadata_store checked the version
  try {
    migrate();
  } catch (const PgError& e) {
    throw std::runtime_error(std::string("PostgreSQL: ") + e.what());
  }
}

PostgresBackend::~PostgresBackend() { stop_watching(); }

void PostgresBackend::stop_watching() {
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_signal_.notify_all();
  if (listener_.joinable()) listener_.join();
}

int PostgresBackend::stored_schema_version(const Config::Database::Postgres& config) {
  try {
    PgConnection c(config.conninfo, pool_timeouts(config));
    if (c.query("SELECT to_regclass('schema_version')").is_null(0, 0)) return 0;
    auto version = c.query("SELECT version FROM schema_version");
    return version.rows() ? static_cast<int>(version.integer(0, 0)) : 0;
  } catch (const PgError& e) {
    throw std::runtime_error(std::string("PostgreSQL: ") + e.what());
  }
}

void PostgresBackend::migrate() {
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
  if (version > kLatestVersion) {
    throw std::runtime_error("the PostgreSQL database has schema version " +
                             std::to_string(version) + ", newer than this mxcd understands (" +
                             std::to_string(kLatestVersion) + "): run a newer mxcd");
  }
  for (; version < kLatestVersion; ++version) {
    c.exec("BEGIN");
    c.exec(kMigrations[version]);
    c.exec("DELETE FROM schema_version");
    c.query("INSERT INTO schema_version (version) VALUES ($1)", version + 1);
    c.exec("COMMIT");
    spdlog::info("database migrated to schema version {}", version + 1);
  }
}

const sql::Dialect& PostgresBackend::dialect() const {
  // SKIP LOCKED: another instance's claim takes what it has locked; this one the rest.
  static const sql::Dialect postgres{.claim_rows = " FOR UPDATE SKIP LOCKED"};
  return postgres;
}

Status PostgresBackend::transaction(const char* operation, Kind kind,
                                    const std::function<void(sql::Session&)>& body) {
  int conflicts = 0;
  int connection_losses = 0;
  while (true) {
    try {
      auto c = pool_->acquire();
      PgSession session(*c);
      // A read runs each statement as a transaction of its own: no BEGIN and COMMIT round
      // trips on the download path.
      if (kind == Kind::read) {
        body(session);
        return {};
      }
      c->exec(kind == Kind::plain_write ? "BEGIN" : "BEGIN ISOLATION LEVEL SERIALIZABLE");
      // A lease need not survive a crash: whoever holds it dies with the process.
      if (kind == Kind::lease) c->exec("SET LOCAL synchronous_commit = off");
      body(session);
      c->exec("COMMIT");
      return {};
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

void PostgresBackend::watch_changes(
    std::function<void(const MetadataStore::MediaChange&)> on_change) {
  listener_ = std::thread([this, on_change = std::move(on_change)] { listen(on_change); });
}

void PostgresBackend::listen(
    const std::function<void(const MetadataStore::MediaChange&)>& on_change) {
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
      on_change(
          {MetadataStore::MediaChange::Kind::unknown, {}});  // changes made while nobody listened
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
