#include "blob/blob_names.hpp"

namespace mxcd {

namespace fs = std::filesystem;

std::string spread_blob_name(std::string_view name) {
  std::string_view digits = blob_name_digits(name);
  std::string path;
  path.reserve(6 + name.size());
  path.append(digits.substr(0, 2)).append("/").append(digits.substr(2, 2)).append("/").append(name);
  return path;
}

fs::path blobs_dir(const fs::path& root) { return root / "blobs"; }
fs::path tmp_dir(const fs::path& root) { return root / "tmp"; }
fs::path damaged_dir(const fs::path& root) { return root / "damaged"; }

fs::path cache_root(const fs::path& storage, std::string_view store) {
  return storage / "cache" / store;
}

fs::path queue_dir(const fs::path& storage, std::string_view store) {
  return storage / "queue" / store;
}

std::string object_key(std::string_view prefix, std::string_view name) {
  std::string key(prefix);
  if (!key.empty()) key += '/';
  return key + spread_blob_name(name);
}

}  // namespace mxcd
