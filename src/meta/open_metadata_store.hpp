// The metadata store the configuration names: SQLite or PostgreSQL.
#pragma once

#include "core/config.hpp"
#include "meta/metadata_store.hpp"

#include <memory>

namespace mxcd {

// Opens and migrates it; throws std::runtime_error with a readable message when it cannot.
std::unique_ptr<MetadataStore> open_metadata_store(const Config::Database& config);

}  // namespace mxcd
