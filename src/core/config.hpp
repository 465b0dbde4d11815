// The configuration model and its loader. Every value is validated at start-up; an invalid
// file is rejected with a message that names the offending key (e.g. "media.max_upload_size").
#pragma once

#include "core/ip_network.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace mxcd {

using Duration = std::chrono::milliseconds;

struct StaticToken {
  std::string token;
  std::string user_id;
};

// One S3-compatible bucket (docs/s3-providers.md has an entry for each provider).
struct S3StoreConfig {
  std::string endpoint;  // scheme://host[:port], nothing after it
  std::string region = "us-east-1";
  std::string bucket;
  std::string prefix;       // object keys are <prefix>/<aa>/<bb>/<sha256>; empty: no prefix
  bool path_style = false;  // https://host/bucket/key instead of https://bucket.host/key
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::filesystem::path ca_file;  // extra trusted CAs (PEM) besides the system's
  std::string storage_class;      // empty: the bucket's default
  enum class Encryption { none, sse_s3, sse_kms, sse_c } encryption = Encryption::none;
  std::string kms_key_id;         // with sse_kms; empty: the bucket's default key
  std::string customer_key;       // with sse_c: base64 of 32 bytes
  bool unsigned_payload = false;  // sign UNSIGNED-PAYLOAD instead of the body's SHA-256
  std::uint64_t multipart_threshold = 64ULL << 20;
  std::uint64_t part_size = 16ULL << 20;
  unsigned parallel_parts = 4;
  Duration connect_timeout = std::chrono::seconds(5);
  Duration read_timeout = std::chrono::seconds(60);
  unsigned max_attempts = 5;
  // sync: an upload is acknowledged once the object is in the bucket. background: once it is
  // on local disk; a queue that survives restarts uploads it.
  enum class Durability { sync, background } durability = Durability::sync;
  enum class Redirect { off, presigned, public_base_url } redirect = Redirect::off;
  Duration presigned_ttl = std::chrono::minutes(5);
  std::string public_base_url;  // without a trailing slash
  std::uint64_t cache_size = 10ULL << 30;
  // Multipart uploads of this store's blobs still unfinished after this long are aborted (at
  // start-up and daily): no upload of ours takes that long, so only a killed one is left.
  Duration stale_multipart_age = std::chrono::hours(24);
};

struct StoreConfig {
  std::string name;  // recorded with every blob written to the store
  enum class Type { filesystem, s3 } type = Type::filesystem;
  std::filesystem::path path;  // filesystem stores
  S3StoreConfig s3;
};

// The store every configuration has: a filesystem store in storage.path.
inline constexpr const char* kLocalStoreName = "local";

struct Config {
  std::string server_name;

  struct Listen {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8090;
  } listen;

  struct Http {
    unsigned threads = 0;  // 0: one per core
    std::size_t max_connections = 4096;
    // Connections that have not yet sent a complete request head (new ones, and those whose
    // head is still arriving) may hold at most this many of the max_connections slots.
    std::size_t max_pending_connections = 1024;
    std::size_t max_header_size = 16 * 1024;
    Duration header_timeout = std::chrono::seconds(30);
    Duration idle_timeout = std::chrono::seconds(60);
    Duration keepalive_timeout = std::chrono::seconds(75);
    // A small (buffered) request body must arrive whole within this time.
    Duration body_timeout = std::chrono::seconds(30);
    // A streamed request body must keep up with this many bytes per second on average, once
    // its first body_timeout has passed; 0 turns the check off.
    std::uint64_t min_body_rate = 1024;
    Duration shutdown_grace_period = std::chrono::seconds(10);
    std::vector<IpNetwork> trusted_proxies;
  } http;

  struct Auth {
    std::string homeserver_url;                // empty: static tokens only
    std::filesystem::path homeserver_ca_file;  // extra trusted CAs (PEM) for an https URL
    Duration token_cache_ttl = std::chrono::seconds(60);
    std::vector<StaticToken> static_tokens;
    // Users allowed to call the admin API (deleting media).
    std::vector<std::string> admin_users;
  } auth;

  struct Storage {
    // The "local" store, and the working space of the others: caches, spool files, queues.
    std::filesystem::path path;
    // Space on storage.path that uploads never take: an upload that would leave less free is
    // refused with 507, and health reports "degraded" while less is free.
    std::uint64_t free_space_reserve = std::uint64_t{1} << 30;
  } storage;

  std::vector<StoreConfig> stores;  // besides "local"

  // Exactly one of SQLite (one instance) and PostgreSQL (any number of instances).
  struct Database {
    std::filesystem::path sqlite_path;  // empty with PostgreSQL
    struct Postgres {
      std::string conninfo;  // for libpq: from `url`, or built from the discrete keys
      unsigned pool_size = 10;
      Duration connect_timeout = std::chrono::seconds(5);
      // The longest one statement runs: PostgreSQL stops it then, and mxcd gives up waiting
      // a second later (a frozen or cut-off server never answers at all).
      Duration statement_timeout = std::chrono::seconds(5);
      // The longest a request waits for a free connection of the pool.
      Duration acquire_timeout = std::chrono::seconds(5);
      // TCP keepalive and TCP_USER_TIMEOUT: a connection whose server host stopped answering
      // (a network partition) is dropped after about this long, even while idle.
      Duration network_timeout = std::chrono::seconds(10);
    };
    std::optional<Postgres> postgres;
    // /_mxcd/health answers 503 when the database has not answered within this.
    Duration health_timeout = std::chrono::seconds(5);
  } database;

  struct Media {
    std::uint64_t max_upload_size = 100ULL * 1024 * 1024;
    unsigned max_pending_uploads_per_user = 5;
    Duration pending_upload_expiry = std::chrono::hours(24);
    Duration download_wait_default = std::chrono::seconds(20);
    Duration download_wait_max = std::chrono::seconds(60);
    // Milliseconds since the epoch; media created at or after it is not served on the legacy
    // unauthenticated path. Absent: no freeze.
    std::optional<std::int64_t> legacy_download_freeze_ms;
    // The store that takes new blobs of each kind; blobs already written stay where they are.
    struct WriteStores {
      std::string local_media = kLocalStoreName;
      std::string remote_media = kLocalStoreName;
      std::string thumbnails = kLocalStoreName;
    } write_store;
  } media;

  // The scrubber: re-hashes the local copies of stored blobs (a local store's files, an S3
  // store's cached copies) in the background, to find bytes damaged on disk.
  struct Scrub {
    bool enabled = false;
    std::uint64_t bytes_per_second = 8ULL << 20;     // read and hashed, at most
    Duration interval = std::chrono::hours(24 * 7);  // from the end of a pass to the next
  } scrub;

  struct Thumbnails {
    struct Size {
      unsigned width = 0;
      unsigned height = 0;
      bool crop = false;  // crop: exactly this box, cut from the centre; else scale inside it
    };
    // Generated right after an image upload; a request gets the smallest of them that is at
    // least as large as asked.
    std::vector<Size> sizes = {
        {32, 32, true}, {96, 96, true}, {320, 240, false}, {640, 480, false}, {800, 600, false}};
    bool generate_on_upload = true;
    // Other sizes on demand, snapped up to a fixed ladder so that the variants stay few.
    bool dynamic = false;
    std::uint64_t max_source_size = 40ULL << 20;
    std::uint64_t max_pixels = 32'000'000;  // of one frame, from the image's header
    unsigned max_frames = 250;              // animations with more frames get a still thumbnail
    unsigned workers = 2;                   // images decoded at once
    // Uploads whose background thumbnails may wait for a worker; beyond it, an upload's
    // thumbnails are made when first asked for.
    unsigned queue_limit = 256;
    Duration time_limit = std::chrono::seconds(20);
  } thumbnails;

  struct Log {
    std::string level = "info";
  } log;
};

struct ConfigError {
  std::string key;  // dotted path of the offending key, or empty for the file itself
  std::string message;
  std::string describe() const { return key.empty() ? message : key + ": " + message; }
};

std::variant<Config, ConfigError> load_config_file(const std::filesystem::path& path);
std::variant<Config, ConfigError> load_config_text(const std::string& yaml_text);

// A value for a libpq "key=value" connection string, quoted as libpq requires.
std::string conninfo_value(const std::string& value);

// "100MiB", "16K", "1048576" -> bytes (K, M, G and KiB, MiB, GiB are all powers of 1024).
std::optional<std::uint64_t> parse_size(std::string_view text);
// "30s", "500ms", "24h", "2d", "90" (seconds) -> milliseconds.
std::optional<Duration> parse_duration(std::string_view text);
// "2024-09-01T00:00:00Z" -> milliseconds since the epoch (UTC only).
std::optional<std::int64_t> parse_utc_timestamp(std::string_view text);

}  // namespace mxcd
