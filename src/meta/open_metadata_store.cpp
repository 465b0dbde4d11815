#include "meta/open_metadata_store.hpp"

#include "meta/postgres/postgres_backend.hpp"
#include "meta/sql/sql_metadata_store.hpp"
#include "meta/sqlite/sqlite_backend.hpp"

#include <stdexcept>
#include <string>

namespace mxcd {

namespace {

std::unique_ptr<sql::Backend> open_backend(const Config::Database& config,
                                           MetadataOpening opening) {
  if (opening == MetadataOpening::inspect) {
    const int version = config.postgres ? PostgresBackend::stored_schema_version(*config.postgres)
                                        : SqliteBackend::stored_schema_version(config.sqlite_path);
    // Nothing stored yet: an empty database in memory reads the same and leaves no trace.
    if (version == 0) return SqliteBackend::in_memory();
    // The statements are this binary's: an older schema must be migrated first.
    if (version != sql::kSchemaVersion) {
      throw std::runtime_error(
          "the database has schema version " + std::to_string(version) +
          "; only a database at version " + std::to_string(sql::kSchemaVersion) +
          " can be read without changing it: run this mxcd once to migrate it");
    }
  }
  if (config.postgres) return std::make_unique<PostgresBackend>(*config.postgres, opening);
  return std::make_unique<SqliteBackend>(config.sqlite_path, opening);
}

}  // namespace

std::unique_ptr<MetadataStore> open_metadata_store(const Config::Database& config,
                                                   MetadataOpening opening) {
  return std::make_unique<sql::SqlMetadataStore>(open_backend(config, opening));
}

}  // namespace mxcd
