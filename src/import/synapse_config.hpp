// Where a Synapse homeserver keeps its media: read from its homeserver.yaml (server_name,
// media_store_path, database, and the bucket of synapse-s3-storage-provider when one is
// configured), each part replaceable by a command-line flag.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace mxcd::synapse {

// The bucket synapse-s3-storage-provider writes to: objects at prefix + the media store's
// relative path.
struct ProviderBucket {
  std::string bucket;
  std::string prefix;
  std::string endpoint_url;  // empty: AWS
};

struct Installation {
  std::string server_name;
  std::filesystem::path media_store;
  std::filesystem::path sqlite_path;  // set for an SQLite database
  std::string postgres_conninfo;      // set for a PostgreSQL database
  std::optional<ProviderBucket> provider_bucket;
};

struct ConfigProblem : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads the parts of homeserver.yaml the importer needs. A relative media_store_path or
// SQLite path is taken relative to the file's directory (Synapse takes it relative to its
// working directory, which Debian's and the Docker image's set-ups make the same or use
// absolute paths). Throws ConfigProblem naming the key that is missing or wrong.
Installation read_homeserver_config(const std::filesystem::path& path);

}  // namespace mxcd::synapse
