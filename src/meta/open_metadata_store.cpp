#include "meta/open_metadata_store.hpp"

#include "meta/postgres/postgres_metadata_store.hpp"
#include "meta/sqlite/sqlite_metadata_store.hpp"

namespace mxcd {

std::unique_ptr<MetadataStore> open_metadata_store(const Config::Database& config) {
  if (config.postgres) return std::make_unique<PostgresMetadataStore>(*config.postgres);
  return std::make_unique<SqliteMetadataStore>(config.sqlite_path);
}

}  // namespace mxcd
