// Blobs as objects in an S3-compatible bucket (<prefix>/<aa>/<bb>/<sha256>), with a local
// cache in front. A blob adopted in place is the object at its location instead, read and
// deleted there; it is never written by this store.
//
// Upload: the body is spooled to local disk while it is hashed; then the object is stored
// (skipped when the bucket already has it) and the spool file becomes the cached copy. With
// durability: background the spool is made durable locally, queued, and uploaded later.
// Download: a cached copy is served like a local file. A miss starts one fetch per blob
// (concurrent requests share it) that fills the cache while the clients already receive the
// bytes; a range that does not start at 0 is fetched alone and not cached, so seeking in a
// large video costs only the bytes asked for. A fetched object whose bytes do not match its
// name is never completed to a client: its last byte is held back until the hash is checked
// (for an unhashed blob, whose name says nothing of its bytes, until the size is).
#pragma once

#include "blob/blob_store.hpp"
#include "blob/cache/blob_cache.hpp"
#include "blob/s3/upload_queue.hpp"
#include "s3/s3_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <deque>
#include <mutex>
#include <unordered_map>

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

  // The blob's location when it has one, else <prefix>/<aa>/<bb>/<sha256>.
  std::string object_key(const BlobId& blob) const;
  s3::Client& client() { return client_; }

 private:
  class Writer;
  struct Fetch;
  friend class Writer;

  // Makes sure the bucket holds the blob: HEAD, and PUT from the file when it does not.
  boost::asio::awaitable<Status> store_object(int fd, const BlobId& blob,
                                              const std::string& content_type);
  Status queue_upload(const BlobId& blob, const std::string& content_type);
  boost::asio::awaitable<void> run_fetch(std::shared_ptr<Fetch> fetch);
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
  UploadQueue queue_;
  BlobCache cache_;  // after queue_: its start-up pins the queued blobs
  std::atomic<bool> stopping_{false};

  std::mutex fetches_mutex_;
  std::unordered_map<std::string, std::shared_ptr<Fetch>> fetches_;  // whole-blob fills

  std::mutex queue_mutex_;
  std::deque<QueuedBlob> pending_;  // queue entries not yet uploaded
  std::string uploading_;           // the entry being uploaded, if any
  std::unique_ptr<boost::asio::steady_timer> queue_timer_;
  std::unique_ptr<boost::asio::steady_timer> sweep_timer_;  // set once, by start()
};

}  // namespace mxcd
