// Where Synapse's media store keeps each file, relative to media_store_path (and, with
// synapse-s3-storage-provider, after the bucket prefix). The names come from Synapse's
// database, and remote origins and IDs from other servers: every path component is checked
// against the characters Synapse itself allows before it becomes part of a path.
#pragma once

#include "import/synapse_database.hpp"

#include <optional>
#include <string>
#include <vector>

namespace mxcd::synapse {

// The original's path, or nullopt when a name in the row cannot be part of a safe path.
std::optional<std::string> original_path(const MediaRow& media);

// The paths a thumbnail may have, the current name first; remote thumbnails stored by old
// Synapse versions lack the method suffix. Empty when a name is unsafe.
std::vector<std::string> thumbnail_paths(const MediaRow& media, const ThumbnailRow& thumbnail);

}  // namespace mxcd::synapse
