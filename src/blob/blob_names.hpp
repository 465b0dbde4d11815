// Blob names and where blobs of a name live: the one owner of both, as LevelDB's
// db/filename.h is of its files. Stores, the cache and the tools build every path and key
// here.
//
//   <root>/blobs/<aa>/<bb>/<name>    a filesystem store (the local one's root is storage.path)
//   <root>/tmp/                      its uploads being written (removed at start-up)
//   <root>/damaged/                  blobs the scrubber set aside
//   <storage.path>/cache/<store>/    an S3 store's cache: blobs/ and tmp/ as above
//   <storage.path>/queue/<store>/    an S3 store's uploads waiting for the bucket
//   [<prefix>/]<aa>/<bb>/<name>      an S3 store's object key
//
// aa and bb are the first four hex digits of the name's hash (blob_name_digits), which
// spread blobs evenly over directories.
#pragma once

#include "core/sha256.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace mxcd {

// Whether a name is a content hash: 64 lower-case hex digits.
inline bool is_sha256_hex(std::string_view name) {
  return name.size() == 64 && name.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

inline constexpr std::string_view kUnhashedPrefix = "unhashed-";

// The name of an object adopted in place before its bytes were hashed: "unhashed-" and the
// hex SHA-256 of "<store>\n<location>". The same object always gets the same name, and no
// name of this form is a content hash, so it never collides with a hashed blob. Such a
// blob's location is always set; MetadataStore::replace_blob renames it once it is hashed.
inline std::string unhashed_blob_id(std::string_view store, std::string_view location) {
  std::string source;
  source.reserve(store.size() + 1 + location.size());
  source.append(store).append("\n").append(location);
  return std::string(kUnhashedPrefix) + Sha256::hex_of(source);
}

inline bool is_unhashed(std::string_view name) {
  return name.starts_with(kUnhashedPrefix) && is_sha256_hex(name.substr(kUnhashedPrefix.size()));
}

// Whether a name is one of the two kinds above, and so safe to use as a file name.
inline bool is_blob_name(std::string_view name) { return is_sha256_hex(name) || is_unhashed(name); }

// The 64 hex digits of a blob name (of either kind), which spread blobs over directories
// (<aa>/<bb>/<name>) evenly. The name must pass is_blob_name.
inline std::string_view blob_name_digits(std::string_view name) {
  return is_unhashed(name) ? name.substr(kUnhashedPrefix.size()) : name;
}

// "<aa>/<bb>/<name>": a blob's place under a blobs directory or a bucket prefix. The name
// must pass is_blob_name.
std::string spread_blob_name(std::string_view name);

std::filesystem::path blobs_dir(const std::filesystem::path& root);
std::filesystem::path tmp_dir(const std::filesystem::path& root);
std::filesystem::path damaged_dir(const std::filesystem::path& root);
std::filesystem::path cache_root(const std::filesystem::path& storage, std::string_view store);
std::filesystem::path queue_dir(const std::filesystem::path& storage, std::string_view store);
// The content-addressed key of a blob in a bucket, under prefix (no slash at either end).
std::string object_key(std::string_view prefix, std::string_view name);

}  // namespace mxcd
