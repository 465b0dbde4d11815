#include "import/synapse_database.hpp"

#include "meta/postgres/pg_connection.hpp"

#include <sqlite3.h>

#include <map>
#include <stdexcept>

namespace mxcd::synapse {

namespace {

// Read-only: the importer must never change Synapse's database, which may be in use.
class SqliteDatabase final : public Database {
 public:
  explicit SqliteDatabase(const std::filesystem::path& path) {
    if (!std::filesystem::is_regular_file(path)) {
      throw std::runtime_error(path.string() + " is not an SQLite database file");
    }
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("cannot open " + path.string() + ": " + message);
    }
    sqlite3_busy_timeout(db_, 10'000);  // Synapse may be writing
  }
  ~SqliteDatabase() override { sqlite3_close(db_); }

 protected:
  std::vector<Row> query(const std::string& sql, const std::vector<std::string>& params) override {
    sqlite3_stmt* stmt = prepare(sql);
    if (stmt == nullptr) throw std::runtime_error(error("cannot read Synapse's database"));
    for (std::size_t i = 0; i < params.size(); ++i) {
      sqlite3_bind_text(stmt, static_cast<int>(i + 1), params[i].data(),
                        static_cast<int>(params[i].size()), SQLITE_TRANSIENT);
    }
    std::vector<Row> rows;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      Row row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
        if (text == nullptr) {
          row.emplace_back();
        } else {
          row.emplace_back(
              std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, c))));
        }
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) throw std::runtime_error(error("cannot read Synapse's database"));
    return rows;
  }

  bool runs(const std::string& sql) override {
    sqlite3_stmt* stmt = prepare(sql);
    sqlite3_finalize(stmt);
    return stmt != nullptr;
  }

 private:
  sqlite3_stmt* prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr) !=
        SQLITE_OK) {
      sqlite3_finalize(stmt);
      return nullptr;
    }
    return stmt;
  }
  std::string error(const std::string& what) const { return what + ": " + sqlite3_errmsg(db_); }

  sqlite3* db_ = nullptr;
};

class PostgresDatabase final : public Database {
 public:
  explicit PostgresDatabase(const std::string& conninfo)
      : connection_(conninfo, PgTimeouts{.connect = std::chrono::seconds(10)}) {
    // Reads only, whatever the role may do.
    connection_.exec("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
  }

 protected:
  std::vector<Row> query(const std::string& sql, const std::vector<std::string>& params) override {
    std::vector<PgParam> values(params.begin(), params.end());
    PgResult result = connection_.run(sql.c_str(), values);
    std::vector<Row> rows;
    for (int r = 0; r < result.rows(); ++r) {
      Row row;
      for (int c = 0; c < result.columns(); ++c) row.push_back(result.optional_text(r, c));
      rows.push_back(std::move(row));
    }
    return rows;
  }

  bool runs(const std::string& sql) override {
    try {
      connection_.exec(sql.c_str());
      return true;
    } catch (const PgError&) {
      return false;
    }
  }

 private:
  PgConnection connection_;
};

std::optional<std::int64_t> number(const std::optional<std::string>& value) {
  if (!value) return std::nullopt;
  try {
    return std::stoll(*value);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Width, height, type and method, from the given column on.
ThumbnailRow thumbnail_row(const std::vector<std::optional<std::string>>& row,
                           std::size_t first_column) {
  return ThumbnailRow{static_cast<unsigned>(number(row[first_column]).value_or(0)),
                      static_cast<unsigned>(number(row[first_column + 1]).value_or(0)),
                      row[first_column + 2].value_or(""), row[first_column + 3].value_or("")};
}

constexpr const char* kMediaColumns =
    "media_id, media_type, media_length, created_ts, upload_name, quarantined_by, "
    "last_access_ts, ";

// Reads the columns of kMediaColumns (and the sha256 after them) into a row.
MediaRow media_row(const std::vector<std::optional<std::string>>& row) {
  MediaRow media;
  media.media_id = row[0].value_or("");
  media.media_type = row[1];
  media.length = number(row[2]);
  media.created_ts = number(row[3]).value_or(0);
  media.upload_name = row[4];
  media.quarantined_by = row[5];
  media.last_access_ts = number(row[6]);
  media.sha256 = row[7];
  return media;
}

}  // namespace

std::unique_ptr<Database> Database::open(const Installation& installation) {
  if (!installation.sqlite_path.empty()) {
    return std::make_unique<SqliteDatabase>(installation.sqlite_path);
  }
  return std::make_unique<PostgresDatabase>(installation.postgres_conninfo);
}

// Synapse before 1.128 (schema delta 91) has no sha256 columns.
std::string Database::sha256_column(const char* table) {
  if (!has_sha256_) {
    has_sha256_ = runs(std::string("SELECT sha256 FROM ") + table + " WHERE 1 = 0");
  }
  return *has_sha256_ ? "sha256" : "NULL";
}

Database::Totals Database::totals() {
  Totals totals;
  for (const char* sql :
       {"SELECT COUNT(*), COALESCE(SUM(media_length), 0) FROM local_media_repository",
        "SELECT COUNT(*), COALESCE(SUM(media_length), 0) FROM remote_media_cache"}) {
    auto rows = query(sql, {});
    totals.media += number(rows.at(0).at(0)).value_or(0);
    totals.bytes += number(rows.at(0).at(1)).value_or(0);
  }
  return totals;
}

std::vector<MediaRow> Database::next_page(MediaCursor& cursor, std::size_t limit) {
  std::vector<MediaRow> page;
  if (!cursor.remote) {
    page = local_page(cursor.media_id, limit);
    if (page.empty()) {
      cursor = MediaCursor{true, "", ""};
    } else {
      cursor.media_id = page.back().media_id;
      return page;
    }
  }
  page = remote_page(cursor.origin, cursor.media_id, limit);
  if (!page.empty()) {
    cursor.origin = page.back().origin;
    cursor.media_id = page.back().media_id;
  }
  return page;
}

std::vector<MediaRow> Database::local_page(const std::string& after, std::size_t limit) {
  const std::string sql = std::string("SELECT ") + kMediaColumns +
                          sha256_column("local_media_repository") +
                          ", user_id, url_cache FROM local_media_repository WHERE media_id > $1 "
                          "ORDER BY media_id LIMIT " +
                          std::to_string(limit);
  std::vector<MediaRow> page;
  for (const auto& row : query(sql, {after})) {
    MediaRow media = media_row(row);
    media.user_id = row[8];
    media.url_cache = row[9];
    page.push_back(std::move(media));
  }
  if (page.empty()) return page;

  // The page's thumbnails in one query: the rows between its first and last media ID.
  std::map<std::string, std::vector<ThumbnailRow>> thumbnails;
  for (const auto& row : query("SELECT media_id, thumbnail_width, thumbnail_height, "
                               "thumbnail_type, thumbnail_method FROM "
                               "local_media_repository_thumbnails WHERE media_id >= $1 AND "
                               "media_id <= $2",
                               {page.front().media_id, page.back().media_id})) {
    thumbnails[row[0].value_or("")].push_back(thumbnail_row(row, 1));
  }
  for (auto& media : page) {
    if (auto it = thumbnails.find(media.media_id); it != thumbnails.end()) {
      media.thumbnails = std::move(it->second);
    }
  }
  return page;
}

std::vector<MediaRow> Database::remote_page(const std::string& after_origin,
                                            const std::string& after_id, std::size_t limit) {
  const std::string sql = std::string("SELECT ") + kMediaColumns +
                          sha256_column("remote_media_cache") +
                          ", media_origin, filesystem_id FROM remote_media_cache "
                          "WHERE (media_origin, media_id) > ($1, $2) "
                          "ORDER BY media_origin, media_id LIMIT " +
                          std::to_string(limit);
  std::vector<MediaRow> page;
  for (const auto& row : query(sql, {after_origin, after_id})) {
    MediaRow media = media_row(row);
    media.local = false;
    media.origin = row[8].value_or("");
    media.filesystem_id = row[9].value_or("");
    page.push_back(std::move(media));
  }
  if (page.empty()) return page;

  std::map<std::pair<std::string, std::string>, std::vector<ThumbnailRow>> thumbnails;
  for (const auto& row : query("SELECT media_origin, media_id, thumbnail_width, "
                               "thumbnail_height, thumbnail_type, thumbnail_method FROM "
                               "remote_media_cache_thumbnails WHERE (media_origin, media_id) >= "
                               "($1, $2) AND (media_origin, media_id) <= ($3, $4)",
                               {page.front().origin, page.front().media_id, page.back().origin,
                                page.back().media_id})) {
    thumbnails[{row[0].value_or(""), row[1].value_or("")}].push_back(thumbnail_row(row, 2));
  }
  for (auto& media : page) {
    if (auto it = thumbnails.find({media.origin, media.media_id}); it != thumbnails.end()) {
      media.thumbnails = std::move(it->second);
    }
  }
  return page;
}

}  // namespace mxcd::synapse
