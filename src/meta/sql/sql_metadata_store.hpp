// MetadataStore written once, in SQL, over a Backend (SQLite or PostgreSQL). Each operation
// is one transaction of the kind it needs; the backend makes the rules hold across
// concurrent callers (SQLite with its single writer, PostgreSQL with serializable
// transactions run again after a conflict).
#pragma once

#include "meta/metadata_store.hpp"
#include "meta/sql/sql_backend.hpp"

#include <memory>

namespace mxcd::sql {

class SqlMetadataStore final : public MetadataStore {
 public:
  explicit SqlMetadataStore(std::unique_ptr<Backend> backend);
  ~SqlMetadataStore() override;

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
  void watch_changes(std::function<void(const MediaChange&)> on_change) override;
  void stop_watching() override;

 private:
  // Runs body(session) as one transaction; its value (or the backend's error) is the result.
  template <class F>
  auto in_transaction(const char* operation, Backend::Kind kind, F&& body)
      -> Result<decltype(body(std::declval<Session&>()))>;

  std::unique_ptr<Backend> backend_;
};

}  // namespace mxcd::sql
