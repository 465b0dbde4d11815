// Reads the media tables of a Synapse database (SQLite or PostgreSQL), read-only, a page at a
// time in key order, so that an import of millions of rows needs little memory and can start
// again from any key.
#pragma once

#include "import/synapse_config.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mxcd::synapse {

// A row of local_media_repository_thumbnails or remote_media_cache_thumbnails.
struct ThumbnailRow {
  unsigned width = 0;
  unsigned height = 0;
  std::string type;    // e.g. image/jpeg
  std::string method;  // crop or scale
};

// A row of local_media_repository or remote_media_cache, with its thumbnails.
struct MediaRow {
  bool local = true;
  std::string origin;  // remote media only: the server of the mxc URI
  std::string media_id;
  std::optional<std::string> media_type;
  std::optional<std::int64_t> length;  // NULL: a /create reservation never uploaded to
  std::int64_t created_ts = 0;
  std::optional<std::string> upload_name;
  std::optional<std::string> user_id;  // local media only
  std::optional<std::string> quarantined_by;
  std::optional<std::string> url_cache;  // local media fetched for a URL preview
  std::optional<std::int64_t> last_access_ts;
  std::optional<std::string> sha256;  // recorded since Synapse 1.128
  std::string filesystem_id;          // remote media only: names its files
  std::vector<ThumbnailRow> thumbnails;
};

// Where a walk through the tables stands: local media by ID, then remote media by origin
// and ID.
struct MediaCursor {
  bool remote = false;
  std::string origin;
  std::string media_id;
};

class Database {
 public:
  virtual ~Database() = default;
  // Opens the installation's database read-only. Throws std::runtime_error.
  static std::unique_ptr<Database> open(const Installation& installation);

  struct Totals {
    std::int64_t media = 0;  // local and remote rows
    std::int64_t bytes = 0;  // of the originals, as the rows record them
  };
  Totals totals();
  // Up to limit rows after the cursor; fewer (or none) at the end of the tables. Throws
  // std::runtime_error when the database fails.
  std::vector<MediaRow> next_page(MediaCursor& cursor, std::size_t limit);

 protected:
  using Value = std::optional<std::string>;
  using Row = std::vector<Value>;
  // Runs a query whose parameters $1, $2, ... appear in order, returning every value as text.
  virtual std::vector<Row> query(const std::string& sql,
                                 const std::vector<std::string>& params) = 0;
  // Whether the statement runs (a column added by a later Synapse may be missing).
  virtual bool runs(const std::string& sql) = 0;

 private:
  std::vector<MediaRow> local_page(const std::string& after, std::size_t limit);
  std::vector<MediaRow> remote_page(const std::string& after_origin, const std::string& after_id,
                                    std::size_t limit);
  std::string sha256_column(const char* table);

  std::optional<bool> has_sha256_;
};

}  // namespace mxcd::synapse
