// The metadata store the configuration names: SQLite or PostgreSQL, behind the one SQL store.
#pragma once

#include "core/config.hpp"
#include "meta/metadata_store.hpp"

#include <memory>

namespace mxcd {

// How a process opens the database. The server migrates it (creating it if needed). A
// command that changes nothing (mxcd import synapse --dry-run) inspects: nothing is created
// or migrated, and a database that does not exist yet reads as an empty one.
enum class MetadataOpening { migrate, inspect };

// Throws std::runtime_error with a readable message when it cannot.
std::unique_ptr<MetadataStore> open_metadata_store(
    const Config::Database& config, MetadataOpening opening = MetadataOpening::migrate);

}  // namespace mxcd
