#include "meta/sqlite/sqlite_backend.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <stdexcept>
#include <string>
#include <unordered_map>

namespace mxcd {

namespace {

// Each entry moves the schema one version up, with the same meaning as the PostgreSQL
// backend's entry of the same number. Never edit an entry once released: add one.
constexpr const char* kMigrations[] = {
    // 1: blobs and media records.
    R"sql(
    CREATE TABLE blobs (
      sha256     TEXT PRIMARY KEY,   -- the blob's name: lower-case hex SHA-256, or unhashed-...
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
constexpr int kLatestVersion = static_cast<int>(std::size(kMigrations));
static_assert(kLatestVersion == sql::kSchemaVersion);

struct SqliteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The store writes $1, $2, ... as PostgreSQL does. SQLite reads "$1" as a parameter *named*
// "$1", numbered by first appearance, which is wrong as soon as $2 comes before $1; "?1" is
// the first parameter wherever it stands.
std::string numbered_parameters(const char* sql) {
  std::string out(sql);
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
  }
  return out;
}

}  // namespace

class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, const char* sql) : db_(db) {
    const std::string text = numbered_parameters(sql);
    if (sqlite3_prepare_v3(db, text.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) !=
        SQLITE_OK) {
      throw SqliteError(std::string("prepare: ") + sqlite3_errmsg(db));
    }
  }
  ~SqliteStatement() { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Runs the statement to its end and returns its rows.
  sql::Rows run(std::initializer_list<sql::Value> parameters) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    int index = 0;
    for (const auto& p : parameters) bind(++index, p);
    const int columns = sqlite3_column_count(stmt_);
    std::vector<sql::Value> cells;
    int rc;
    while ((rc = sqlite3_step(stmt_)) == SQLITE_ROW) {
      for (int c = 0; c < columns; ++c) cells.push_back(column(c));
    }
    sqlite3_reset(stmt_);
    if (rc != SQLITE_DONE) throw SqliteError(std::string("step: ") + sqlite3_errmsg(db_));
    const std::int64_t affected = sqlite3_stmt_readonly(stmt_) ? 0 : sqlite3_changes64(db_);
    return sql::Rows(columns, std::move(cells), affected);
  }

 private:
  void bind(int i, const sql::Value& v) {
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
      sqlite3_bind_int64(stmt_, i, *n);
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      sqlite3_bind_text(stmt_, i, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(stmt_, i);
    }
  }

  sql::Value column(int c) const {
    switch (sqlite3_column_type(stmt_, c)) {
      case SQLITE_NULL:
        return {};
      case SQLITE_INTEGER:
        return std::int64_t{sqlite3_column_int64(stmt_, c)};
      default: {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
        return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)));
      }
    }
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteConnection final : public sql::Session {
 public:
  SqliteConnection(const std::string& path, int flags) {
    if (sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw SqliteError("cannot open " + path + ": " + message);
    }
    sqlite3_busy_timeout(db_, 10'000);
    // WAL lets readers run beside the writer; FULL makes every commit durable before the
    // client hears of it (principle 5: a crash never loses acknowledged media).
    if (!(flags & SQLITE_OPEN_READONLY)) exec("PRAGMA journal_mode = WAL");
    exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
  }
  ~SqliteConnection() override {
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

  // Statements are prepared once per connection and reused; the SQL text's address is the
  // key (the store's statements are literals or built once).
  sql::Rows run(const char* sql, std::initializer_list<sql::Value> parameters) override {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      it = statements_.emplace(sql, std::make_unique<SqliteStatement>(db_, sql)).first;
    }
    return it->second->run(parameters);
  }

  // One instance uses the database: it acts on its own changes, there is nobody to tell.
  void announce(const MetadataStore::MediaChange&) override {}

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, std::unique_ptr<SqliteStatement>> statements_;
};

namespace {

// For leases, whose commits need not reach the disk: whoever holds a lease dies with the
// process, and the next durable commit syncs them anyway.
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

}  // namespace

SqliteBackend::SqliteBackend(const std::filesystem::path& path, MetadataOpening opening) {
  if (opening == MetadataOpening::inspect) {  // open_metadata_store checked the version
    writer_.connection = std::make_unique<SqliteConnection>(path, SQLITE_OPEN_READONLY);
    reads_ = &writer_;
    return;
  }
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  writer_.connection =
      std::make_unique<SqliteConnection>(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  migrate();
  reader_.connection = std::make_unique<SqliteConnection>(path, SQLITE_OPEN_READWRITE);
}

std::unique_ptr<SqliteBackend> SqliteBackend::in_memory() {
  std::unique_ptr<SqliteBackend> backend(new SqliteBackend());
  backend->writer_.connection =
      std::make_unique<SqliteConnection>(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY);
  backend->migrate();
  backend->reads_ = &backend->writer_;  // a second connection would be a second database
  return backend;
}

SqliteBackend::~SqliteBackend() = default;

int SqliteBackend::stored_schema_version(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return 0;
  SqliteConnection c(path, SQLITE_OPEN_READONLY);
  auto table =
      c.run("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", {});
  if (table.empty()) return 0;
  auto version = c.run("SELECT version FROM schema_version", {});
  return version.empty() ? 0 : static_cast<int>(version.first().integer(0));
}

void SqliteBackend::migrate() {
  auto& c = *writer_.connection;
  c.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  auto stored = c.run("SELECT version FROM schema_version", {});
  int version = stored.empty() ? 0 : static_cast<int>(stored.first().integer(0));
  if (version > kLatestVersion) {
    throw std::runtime_error("the database has schema version " + std::to_string(version) +
                             ", newer than this mxcd understands (" +
                             std::to_string(kLatestVersion) + "): run a newer mxcd");
  }
  for (; version < kLatestVersion; ++version) {
    Transaction tx(c);
    c.exec(kMigrations[version]);
    c.exec("DELETE FROM schema_version");
    c.query("INSERT INTO schema_version (version) VALUES ($1)", version + 1);
    tx.commit();
    spdlog::info("database migrated to schema version {}", version + 1);
  }
}

const sql::Dialect& SqliteBackend::dialect() const {
  // One writer at a time: a claim's rows cannot be taken by anyone else meanwhile.
  static const sql::Dialect sqlite{.claim_rows = ""};
  return sqlite;
}

Status SqliteBackend::transaction(const char* operation, Kind kind,
                                  const std::function<void(sql::Session&)>& body) {
  Lane& lane = kind == Kind::read ? *reads_ : writer_;
  std::lock_guard lock(lane.mutex);
  SqliteConnection& c = *lane.connection;
  try {
    if (kind == Kind::read) {
      body(c);  // each statement reads a snapshot of its own
      return {};
    }
    std::optional<NotDurable> not_durable;
    if (kind == Kind::lease) not_durable.emplace(c);
    Transaction tx(c);
    body(c);
    tx.commit();
    return {};
  } catch (const SqliteError& e) {
    spdlog::error("database: {} failed: {}", operation, e.what());
    return MatrixError::internal("Database error");
  }
}

}  // namespace mxcd
