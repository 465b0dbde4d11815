// Blobs as objects in an S3-compatible bucket (<prefix>/<aa>/<bb>/<sha256>), with a local
// cache in front. A blob adopted in place is the object at its location instead, read and
// deleted there; it is never written by this store.
//
// Upload: the body is spooled to local disk while it is hashed; then the object is stored
// (skipped when the bucket already has it) and the spool file becomes the cached copy. With
// durability: background the spool is made durable locally, queued, and uploaded later.
// Download: the fill tier (blob/cache/blob_filler.hpp) with the bucket as its source
// (blob/s3/s3_blob_source.hpp) serves cached copies and fills misses while clients read
// them. A fetched object must hash to its name; an unhashed blob, whose name says nothing of
// its bytes, must only have its size.
#pragma once

#include "blob/blob_store.hpp"
#include "blob/cache/blob_cache.hpp"
#include "blob/cache/blob_filler.hpp"
#include "blob/s3/s3_blob_source.hpp"
#include "blob/s3/upload_queue.hpp"
#include "s3/s3_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <deque>
#include <mutex>

namespace mxcd {

class S3BlobStore final : public BlobStore {
 public:
  // Its cache lives in <storage_root>/cache/<name>, its queue in <storage_root>/queue/<name>.
  // Throws std::runtime_error or std::filesystem::filesystem_error when they cannot be used.
  S3BlobStore(const StoreConfig& config, const std::filesystem::path& storage_root,
              boost::asio::thread_pool& blocking_pool,
              StoreOpening opening = StoreOpening::recover);
  ~S3BlobStore() override;

  // Checks the bucket set-up once. Returns what is wrong when the bucket refuses us (wrong
  // keys, region, bucket); an unreachable server is only logged: the cache still serves.
  std::optional<std::string> check_bucket();
  // Starts uploading queued blobs (durability: background), on the given context.
  void start(boost::asio::io_context& context);

  std::string_view name() const override { return name_; }
  Result<std::unique_ptr<BlobWriter>> begin_write(const std::string& content_type) override;
  boost::asio::awaitable<Result<OpenBlob>> open(const BlobId& blob,
                                                std::optional<ByteSpan> range) override;
  std::optional<std::string> redirect_url(const BlobId& blob,
                                          const RedirectHeaders& headers) const override;
  // Also drops the blob's queued upload, unless that upload is under way (then 503: retry).
  boost::asio::awaitable<Status> remove(const BlobId& blob) override;
  Status check_writable() override;
  std::uint64_t release_space(std::uint64_t bytes) override { return cache_.release(bytes); }
  void stop() override;
  // The object, or the cached copy while the blob waits in the upload queue.
  boost::asio::awaitable<Result<BlobDigest>> digest(const BlobId& blob) override;
  std::string describe_location(const BlobId& blob) const override;
  // The cached copy. A damaged one is dropped, so that the next read fetches the object
  // again; one still queued for upload is the only copy and stays (a new upload of the same
  // file replaces it).
  std::optional<LocalCopy> open_local_copy(const BlobId& blob) override;
  boost::asio::awaitable<void> set_aside_damaged_copy(const BlobId& blob,
                                                      const LocalCopy& copy) override;
  boost::asio::awaitable<Result<std::optional<BlobId>>> find_adoptable(
      const std::string& location) override;
  // The object itself, even while the blob waits in the upload queue.
  boost::asio::awaitable<Status> read(const BlobId& blob, BlobSink& sink) override;

 private:
  class Writer;
  friend class Writer;

  Status queue_upload(const BlobId& blob, const std::string& content_type);
  boost::asio::awaitable<void> drain_queue();
  // At start-up and then daily: aborts the multipart uploads of this store's blob keys that
  // began over stale_multipart_age ago. A killed instance leaves its uploads unfinished (the
  // bucket bills their parts), and not every server can hold a lifecycle rule that aborts them.
  boost::asio::awaitable<void> sweep_stale_uploads();
  bool is_own_object_key(std::string_view key) const;
  void wake_queue();

  std::string name_;
  const S3StoreConfig& config_;
  boost::asio::thread_pool& blocking_pool_;
  s3::Client client_;
  S3BlobSource bucket_;
  UploadQueue queue_;
  BlobCache cache_;  // after queue_: its start-up pins the queued blobs
  BlobFiller filler_;
  std::atomic<bool> stopping_{false};

  std::mutex queue_mutex_;
  std::deque<QueuedBlob> pending_;  // queue entries not yet uploaded
  std::string uploading_;           // the entry being uploaded, if any
  std::unique_ptr<boost::asio::steady_timer> queue_timer_;
  std::unique_ptr<boost::asio::steady_timer> sweep_timer_;  // set once, by start()
};

}  // namespace mxcd
