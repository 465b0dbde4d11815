// The metadata store as the pipelines use it: every call runs on the blocking pool, finished
// records (immutable apart from quarantine and access time) are kept in a small LRU cache so
// a warm download costs no database round trip, and last-access times are written in batches.
#pragma once

#include "meta/metadata_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace mxcd {

// Shared, never modified: a cached record is handed out without copying.
using RecordPtr = std::shared_ptr<const MediaRecord>;

class MediaRecords {
 public:
  MediaRecords(MetadataStore& store, boost::asio::thread_pool& blocking_pool,
               std::size_t cache_capacity = 65536);

  // A null pointer when there is no such record.
  boost::asio::awaitable<Result<RecordPtr>> find(const MediaKey& key);
  // Skips the cache: for records that may be changing (pending uploads).
  boost::asio::awaitable<Result<RecordPtr>> find_fresh(const MediaKey& key);
  // Leases a blob adopted where it is (see MetadataStore), waiting while it is being deleted.
  boost::asio::awaitable<Result<std::int64_t>> lease_adopted_blob(const std::string& sha256);
  // Leases the finished writer's blob, then makes it durable in `store`: leased before the
  // store looks for the bytes, a deletion of the same bytes cannot run between the store
  // finding them and a record referring to them, and the blob has a row before its bytes
  // exist (so a crash before the record leaves them to the collector). Returns the lease for
  // insert_media or insert_thumbnail.
  boost::asio::awaitable<Result<std::int64_t>> commit_leased(BlobWriter& writer, const BlobId& blob,
                                                             std::string_view store);
  // Gives up a lease in the background (for an upload that failed).
  void release_lease(std::int64_t lease);
  boost::asio::awaitable<Status> insert(MediaRecord record, std::int64_t lease);
  boost::asio::awaitable<Result<MetadataStore::Reservation>> reserve_pending(MediaRecord record,
                                                                             unsigned max_pending);
  boost::asio::awaitable<Result<MetadataStore::FillOutcome>> fill_pending(MediaRecord record,
                                                                          std::int64_t lease);
  // Thumbnails are not cached: a lookup is one indexed read.
  boost::asio::awaitable<Result<std::optional<ThumbnailRecord>>> find_thumbnail(
      const ThumbnailKey& key);
  boost::asio::awaitable<Result<std::optional<ThumbnailRecord>>> insert_thumbnail(
      ThumbnailRecord record, std::int64_t lease);
  // Removes a record and its thumbnails; whether there was such a record.
  boost::asio::awaitable<Result<bool>> remove(const MediaKey& key);
  // Drops cached copies: the record was changed or removed elsewhere (another instance).
  void forget(const MediaKey& key);
  void forget_all();
  boost::asio::awaitable<Status> ping();
  // The same, answering unavailable once `deadline` has passed; a ping still under way then
  // finishes in the background (the store bounds it too).
  boost::asio::awaitable<Status> ping(std::chrono::milliseconds deadline);

  // Remembers that a media item was served; written to the database in the next batch.
  void note_access(const MediaKey& key);

  // Every interval: write access times, drop expired reservations. Runs until stop().
  void start_maintenance(boost::asio::io_context& io, std::chrono::milliseconds interval);
  void stop();
  // Writes pending access times now (also called at shutdown).
  void flush_access_times();

 private:
  // The lease, retried while the blob is being deleted; storing as in MetadataStore.
  boost::asio::awaitable<Result<std::int64_t>> lease_blob(
      const std::string& sha256, std::optional<MetadataStore::BlobToStore> storing);
  // removals_seen: the removal count before the record was read; nothing is cached when a
  // removal happened since.
  void cache_put(RecordPtr record, std::optional<std::uint64_t> removals_seen = std::nullopt);
  RecordPtr cache_get(const MediaKey& key);
  std::uint64_t removals_before_lookup();
  void forget_cached(const MediaKey& key);  // cache_mutex_ held

  MetadataStore& store_;
  boost::asio::thread_pool& blocking_pool_;
  const std::size_t cache_capacity_;

  std::mutex cache_mutex_;
  std::list<RecordPtr> lru_;  // most recently used first
  std::unordered_map<MediaKey, std::list<RecordPtr>::iterator, MediaKeyHash> cache_index_;
  // Calls of forget() so far: a lookup that began before one must not cache what it read.
  std::uint64_t removals_ = 0;

  std::mutex access_mutex_;
  std::unordered_map<MediaKey, std::int64_t, MediaKeyHash> access_times_;

  std::unique_ptr<boost::asio::steady_timer> maintenance_timer_;
};

}  // namespace mxcd
