// MetadataStore on SQLite in WAL mode: one writer connection and one reader connection, each
// behind its own mutex, so downloads never queue behind an upload's commit.
// Schema changes are versioned migrations applied at open, each in its own transaction.
#pragma once

#include "meta/metadata_store.hpp"

#include <filesystem>
#include <memory>
#include <mutex>

struct sqlite3;

namespace mxcd {

class SqliteConnection;

class SqliteMetadataStore final : public MetadataStore {
 public:
  // Opens (creating if needed) and migrates the database. Throws std::runtime_error with a
  // readable message when it cannot, or when the schema is newer than this binary.
  explicit SqliteMetadataStore(const std::filesystem::path& path);
  ~SqliteMetadataStore() override;

  Result<std::optional<MediaRecord>> find_media(const MediaKey& key) override;
  Status insert_media(const MediaRecord& record, std::int64_t lease) override;
  Result<Reservation> reserve_pending(const MediaRecord& record, unsigned max_pending,
                                      std::int64_t now) override;
  Result<FillOutcome> fill_pending(const MediaRecord& filled, std::int64_t lease,
                                   std::int64_t now) override;
  Result<std::optional<ThumbnailRecord>> find_thumbnail(const ThumbnailKey& key) override;
  Result<std::optional<ThumbnailRecord>> insert_thumbnail(const ThumbnailRecord& record,
                                                          std::int64_t lease) override;
  Result<bool> delete_media(const MediaKey& key, std::int64_t now) override;
  Result<std::optional<std::int64_t>> lease_blob(
      const std::string& sha256, std::int64_t expires_ts,
      const std::optional<BlobToStore>& storing) override;
  Status release_lease(std::int64_t lease) override;
  Result<std::vector<DoomedBlob>> claim_unreferenced_blobs(std::int64_t now,
                                                           std::int64_t reclaim_before_ts,
                                                           std::size_t limit) override;
  Status finish_blob_deletion(const std::string& sha256) override;
  Status abandon_blob_deletion(const std::string& sha256) override;
  Result<BlobReplacement> replace_blob(const std::string& old_id, const BlobId& hashed) override;
  Result<std::vector<BlobRow>> list_blobs(const std::string& after_sha256,
                                          std::size_t limit) override;
  Result<std::vector<MediaRecord>> list_media(const MediaKey& after, std::size_t limit) override;
  Result<std::size_t> add_blobs(const std::vector<BlobRow>& rows) override;
  Result<std::size_t> add_media(const std::vector<MediaRecord>& records) override;
  Result<std::vector<ThumbnailRecord>> list_thumbnails(const ThumbnailKey& after,
                                                       std::size_t limit) override;
  Result<std::size_t> add_thumbnails(const std::vector<ThumbnailRecord>& records) override;
  Result<RowCounts> count_rows() override;
  Status record_access(const std::vector<AccessTime>& accesses) override;
  Result<int> delete_expired_pending(std::int64_t now) override;
  Status ping() override;

  static int schema_version();

 private:
  std::mutex writer_mutex_;
  std::unique_ptr<SqliteConnection> writer_;
  std::mutex reader_mutex_;
  std::unique_ptr<SqliteConnection> reader_;
};

}  // namespace mxcd
