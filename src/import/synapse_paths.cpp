#include "import/synapse_paths.hpp"

#include <algorithm>
#include <cctype>

namespace mxcd::synapse {

namespace {

// Synapse's own rule for a path component: [A-Za-z0-9_-.[]:], and not "", "." or "..".
bool safe_component(std::string_view part) {
  if (part.empty() || part == "." || part == "..") return false;
  return std::all_of(part.begin(), part.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '[' || c == ']' || c == ':';
  });
}

// IDs are split as ab/cd/rest; Synapse's IDs are long enough for that.
std::optional<std::string> split_id(const std::string& id) {
  if (id.size() < 5 || !safe_component(id)) return std::nullopt;
  return id.substr(0, 2) + '/' + id.substr(2, 2) + '/' + id.substr(4);
}

// URL-preview IDs since Synapse 1.0 are "YYYY-MM-DD_<random>", stored as date/random.
bool dated(const std::string& id) {
  if (id.size() < 12 || id[10] != '_') return false;
  for (std::size_t i = 0; i < 10; ++i) {
    bool dash = i == 4 || i == 7;
    if (dash ? id[i] != '-' : !std::isdigit(static_cast<unsigned char>(id[i]))) return false;
  }
  return true;
}

// The directory of the original (for remote and local media) and of its thumbnails.
std::optional<std::string> media_directory(const MediaRow& media, bool thumbnails) {
  if (!media.local) {
    auto split = split_id(media.filesystem_id);
    if (!split || !safe_component(media.origin)) return std::nullopt;
    return std::string(thumbnails ? "remote_thumbnail/" : "remote_content/") + media.origin + '/' +
           *split;
  }
  if (media.url_cache) {
    const char* base = thumbnails ? "url_cache_thumbnails/" : "url_cache/";
    if (dated(media.media_id)) {
      if (!safe_component(media.media_id)) return std::nullopt;
      return base + media.media_id.substr(0, 10) + '/' + media.media_id.substr(11);
    }
    auto split = split_id(media.media_id);
    if (!split) return std::nullopt;
    return base + *split;
  }
  auto split = split_id(media.media_id);
  if (!split) return std::nullopt;
  return std::string(thumbnails ? "local_thumbnails/" : "local_content/") + *split;
}

}  // namespace

std::optional<std::string> original_path(const MediaRow& media) {
  return media_directory(media, false);
}

std::vector<std::string> thumbnail_paths(const MediaRow& media, const ThumbnailRow& thumbnail) {
  auto directory = media_directory(media, true);
  auto slash = thumbnail.type.find('/');
  if (!directory || slash == std::string::npos) return {};
  std::string type = thumbnail.type;
  type[slash] = '-';
  if (!safe_component(type) || !safe_component(thumbnail.method)) return {};
  std::string name = *directory + '/' + std::to_string(thumbnail.width) + '-' +
                     std::to_string(thumbnail.height) + '-' + type;
  std::vector<std::string> paths{name + '-' + thumbnail.method};
  if (!media.local) paths.push_back(name);
  return paths;
}

}  // namespace mxcd::synapse
