#include "tools/database_copy.hpp"

#include "meta/open_metadata_store.hpp"

#include <spdlog/spdlog.h>

namespace mxcd {

namespace {

constexpr std::size_t kBatch = 1000;

struct Tally {
  std::int64_t seen = 0;
  std::size_t added = 0;
};

void progress(std::ostream& out, const char* what, const Tally& tally, std::int64_t total) {
  out << what << ": " << tally.seen << " of " << total << " copied (" << tally.added << " new)\n"
      << std::flush;
}

// "3 blobs (1 new, 2 already there)"
std::string summary(const Tally& tally, const char* what) {
  return std::to_string(tally.seen) + " " + what + " (" + std::to_string(tally.added) + " new, " +
         std::to_string(tally.seen - static_cast<std::int64_t>(tally.added)) + " already there)";
}

// Copies rows page by page: list() returns the page after a key, key() gives a row's key.
template <class Row, class Key, class List, class Add, class KeyOf>
bool copy_rows(const char* what, std::int64_t total, std::ostream& out, Key after, List list,
               Add add, KeyOf key_of, Tally& tally) {
  while (true) {
    Result<std::vector<Row>> page = list(after);
    if (!page) return false;
    if (page->empty()) break;
    Result<std::size_t> added = add(*page);
    if (!added) return false;
    tally.seen += static_cast<std::int64_t>(page->size());
    tally.added += *added;
    after = key_of(page->back());
    progress(out, what, tally, total);
  }
  return true;
}

}  // namespace

int copy_sqlite_to_postgres(const Config& config, const std::filesystem::path& sqlite_path,
                            std::ostream& out) {
  if (!config.database.postgres) {
    spdlog::error("the configuration's database is not PostgreSQL: name the target in "
                  "database.postgres");
    return 1;
  }
  // Opening would create an empty database: a wrong path must be an error instead.
  if (!std::filesystem::is_regular_file(sqlite_path)) {
    spdlog::error("{} is not an SQLite database file", sqlite_path.string());
    return 1;
  }
  Config::Database source_database;
  source_database.sqlite_path = sqlite_path;
  std::unique_ptr<MetadataStore> source;
  std::unique_ptr<MetadataStore> target;
  try {
    source = open_metadata_store(source_database);
    target = open_metadata_store(config.database);
  } catch (const std::exception& e) {
    spdlog::error("cannot copy: {}", e.what());
    return 1;
  }
  auto counts = source->count_rows();
  if (!counts) return 1;

  // Blobs first: every record's and thumbnail's blob must be there before it.
  Tally blobs;
  bool ok = copy_rows<MetadataStore::BlobRow>(
      "blobs", counts->blobs, out, std::string(),
      [&](const std::string& after) { return source->list_blobs(after, kBatch); },
      [&](const auto& rows) { return target->add_blobs(rows); },
      [](const MetadataStore::BlobRow& row) { return row.blob.name; }, blobs);
  Tally media;
  ok = ok && copy_rows<MediaRecord>(
                 "media", counts->media, out, MediaKey(),
                 [&](const MediaKey& after) { return source->list_media(after, kBatch); },
                 [&](const auto& records) { return target->add_media(records); },
                 [](const MediaRecord& record) { return record.key; }, media);
  Tally thumbnails;
  ok = ok && copy_rows<ThumbnailRecord>(
                 "thumbnails", counts->thumbnails, out, ThumbnailKey(),
                 [&](const ThumbnailKey& after) { return source->list_thumbnails(after, kBatch); },
                 [&](const auto& records) { return target->add_thumbnails(records); },
                 [](const ThumbnailRecord& record) { return record.key; }, thumbnails);
  if (!ok) {
    out << "copy failed (see the log); run it again to continue\n";
    return 1;
  }
  out << "done: " << summary(blobs, "blobs") << ", " << summary(media, "media") << ", "
      << summary(thumbnails, "thumbnails") << "\n";
  return 0;
}

}  // namespace mxcd
