// Every configured blob store by name, and which one takes new blobs of each kind of media.
// Each blob records the store it was written to, so a media record stays readable after the
// write store of its kind changes.
#pragma once

#include "blob/blob_store.hpp"
#include "core/config.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <map>
#include <memory>
#include <vector>

namespace mxcd {

class S3BlobStore;

enum class MediaKind { local_media, remote_media, thumbnails };

class BlobStores {
 public:
  // The "local" store in storage.path and every store in config.stores. Throws
  // std::runtime_error (or a filesystem_error) when one cannot be set up.
  BlobStores(const Config& config, boost::asio::thread_pool& blocking_pool,
             StoreOpening opening = StoreOpening::recover);
  ~BlobStores();

  // nullptr for a name no store has (a record written under a configuration since changed).
  BlobStore* find(std::string_view name);
  BlobStore& write_store(MediaKind kind);
  const std::vector<BlobStore*>& all() const { return all_; }

  // What waits in an S3 store's upload queue (durability: background).
  struct QueueReport {
    std::string store;
    std::string bucket;
    std::size_t blobs = 0;
    std::uint64_t bytes = 0;            // of the blobs whose cached copy is there
    std::int64_t oldest_queued_ts = 0;  // when blobs > 0
  };
  // One per S3 store, read from the queue and cache directories without opening the stores,
  // so that it works beside a running server.
  static std::vector<QueueReport> report_queues(const Config& config);

  // Asks every bucket once whether the set-up is right; returns what is wrong.
  std::vector<std::string> check_buckets();
  // Starts background work (upload queues) on context; stop() ends it.
  void start(boost::asio::io_context& context);
  void stop();

 private:
  const Config& config_;
  std::map<std::string, std::unique_ptr<BlobStore>, std::less<>> stores_;
  std::vector<BlobStore*> all_;
  std::vector<S3BlobStore*> s3_stores_;
};

}  // namespace mxcd
