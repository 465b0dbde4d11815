// MetadataStore on PostgreSQL, for any number of mxcd instances sharing one database.
// Every transaction that changes something runs SERIALIZABLE and is run again when PostgreSQL
// reports a conflict with another transaction, so the rules that SQLite gets from its single
// writer (the pending-upload limit, one fill per reservation, a blob deleted only when no
// record or lease holds it) hold across instances without any lock of our own.
// Connections come from a bounded pool; a lost connection is replaced, and a database that
// cannot be reached gives 503 until it is back. Fills of async uploads and deletions are
// announced to every instance with LISTEN/NOTIFY.
#pragma once

#include "core/config.hpp"
#include "meta/metadata_store.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace mxcd {

class PgConnection;
class PgPool;

class PostgresMetadataStore final : public MetadataStore {
 public:
  // Connects and migrates the schema (one instance at a time: the others wait). Throws
  // std::runtime_error with a readable message when it cannot, or when the schema is newer
  // than this binary.
  explicit PostgresMetadataStore(const Config::Database::Postgres& config);
  ~PostgresMetadataStore() override;

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

  static int schema_version();

 private:
  enum class Isolation { serializable, read_committed, single_statement };
  // Runs f(connection) in one transaction, again after a conflict or a lost connection.
  // single_statement: f runs one statement, which is its own transaction.
  template <class F>
  auto transaction(const char* operation, Isolation isolation, F&& f)
      -> Result<decltype(f(std::declval<PgConnection&>()))>;
  void migrate();
  void listen(const std::function<void(const MediaChange&)>& on_change);

  Config::Database::Postgres config_;
  std::unique_ptr<PgPool> pool_;

  std::thread listener_;
  std::mutex stop_mutex_;
  std::condition_variable stop_signal_;
  std::atomic<bool> stopping_{false};
};

}  // namespace mxcd
