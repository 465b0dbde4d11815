// mxcd import synapse: moves a Synapse homeserver's media into mxcd. Reads Synapse's media
// tables and media store (or the bucket synapse-s3-storage-provider filled), stores every
// original and thumbnail in mxcd's stores (deduplicated by content) and records it under the
// same mxc URI with the same type, name, uploader, timestamps and quarantine state.
//
// Runs beside a live Synapse and can be stopped at any point: every item is recorded only
// after its bytes are stored, and items already recorded are skipped, so running it again
// continues where it stopped and, once everything is there, changes nothing.
#pragma once

#include "import/progress.hpp"

#include "core/config.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

namespace mxcd::synapse {

struct ImportOptions {
  // Synapse's configuration; the flags below replace what it says.
  std::filesystem::path homeserver_config;
  std::string server_name;
  std::filesystem::path media_store;
  std::filesystem::path sqlite_path;
  std::string postgres_conninfo;

  unsigned workers = 4;
  bool dry_run = false;  // report what would be imported; change nothing
  bool verify = false;   // afterwards, read every imported blob back and check its hash

  // The mxcd S3 store whose bucket holds synapse-s3-storage-provider's objects, at
  // bucket_prefix + the media store's relative path.
  std::string bucket_store;
  std::optional<std::string> bucket_prefix;  // default: the provider's prefix in homeserver.yaml
  // adopt: record the objects where they are, hashing them later (--verify); copy: store
  // them again in mxcd's own layout.
  enum class BucketMedia { adopt, copy } bucket_media = BucketMedia::adopt;

  Progress::Style progress = Progress::automatic_style();
  std::chrono::milliseconds progress_interval = std::chrono::seconds(10);
};

// Returns the exit code: 0 when nothing failed, 1 when something did (the report says what),
// 2 when the options or configurations are wrong. The report goes to out, progress to
// stderr, details of failures to the log.
int import_media(const Config& config, const ImportOptions& options, std::ostream& out);

}  // namespace mxcd::synapse
