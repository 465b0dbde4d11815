// What happens on a thumbnail request: find the media as a download would (waiting for an
// async upload, applying quarantine and the legacy freeze), choose the box, and serve the
// thumbnail made for it, making it first when there is none yet. A thumbnail is made once:
// concurrent requests for the same one wait for the first, and the result is stored as a
// blob with a metadata row, so every later request (on any instance) gets the same bytes.
// Images are decoded by a bounded pool of worker threads, never by a network thread. A
// thumbnail waits for a free worker before its source is read, so that memory is bounded by
// the number of workers, not by the number waiting: a request that waits holds its media
// record alone, and requests go before the background generation after uploads, whose
// queue is bounded (beyond it, an upload's thumbnails are made when first asked for).
#pragma once

#include "blob/blob_stores.hpp"
#include "core/config.hpp"
#include "core/slots.hpp"
#include "media/download.hpp"
#include "media/media_records.hpp"
#include "media/thumbnail_sizes.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace mxcd {

struct ThumbnailRequest {
  DownloadRequest media;
  unsigned width = 0;  // as asked, before choosing the box
  unsigned height = 0;
  bool crop = false;
  bool animated = false;
};

class ThumbnailPipeline {
 public:
  ThumbnailPipeline(const Config& config, BlobStores& stores, MediaRecords& records,
                    DownloadPipeline& downloads, boost::asio::thread_pool& blocking_pool);
  ~ThumbnailPipeline();

  boost::asio::awaitable<Result<ThumbnailRecord>> find(const ThumbnailRequest& request);
  boost::asio::awaitable<Result<OpenBlob>> open(const ThumbnailRecord& thumbnail);

  // After an upload: makes the configured sizes of an image in the background, unless
  // thumbnails.queue_limit uploads are waiting for a worker already.
  void made_upload(RecordPtr media, boost::asio::any_io_executor executor);
  // Background generation stops after the thumbnails in progress; nothing waits for a
  // worker any more.
  void stop();

 private:
  struct Flight;
  boost::asio::awaitable<Result<ThumbnailRecord>> find_or_make(RecordPtr media, ThumbnailKey key);
  // The thumbnails of one media: one read of the source and one decode for all of them.
  // `worker` is a free worker slot, released once the thumbnails are decoded.
  boost::asio::awaitable<std::vector<Result<ThumbnailRecord>>> make(
      RecordPtr media, const std::vector<ThumbnailKey>& keys, Slots::Slot& worker);
  // The flight of key, and whether it is new (the caller makes the thumbnail) rather than
  // under way (the caller waits for it).
  std::pair<std::shared_ptr<Flight>, bool> join_flight(const ThumbnailKey& key);
  // Ends a flight: its waiters get the result, a lasting failure is remembered.
  void land(const MediaRecord& media, const ThumbnailKey& key, Flight& flight,
            const Result<ThumbnailRecord>& made);
  std::optional<MatrixError> remembered_failure(const MediaRecord& media, const ThumbnailKey& key);
  boost::asio::awaitable<Result<std::string>> read_source(const MediaRecord& media);
  boost::asio::awaitable<Result<ThumbnailRecord>> store(const MediaRecord& media, ThumbnailKey key,
                                                        std::string bytes,
                                                        std::string content_type);
  boost::asio::awaitable<void> make_configured(RecordPtr media);

  const Config& config_;
  BlobStores& stores_;
  MediaRecords& records_;
  DownloadPipeline& downloads_;
  boost::asio::thread_pool& blocking_pool_;
  boost::asio::thread_pool workers_;
  // One slot per worker thread: taken before a source is read, given back once decoded.
  Slots worker_slots_;
  // Uploads whose background thumbnails wait for a worker.
  std::atomic<std::size_t> queued_uploads_{0};
  std::atomic<bool> stopping_{false};

  // Thumbnails being made on this instance, by key: later requests wait for the first.
  std::mutex flights_mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  // Why recent sources could not be thumbnailed, so that a hostile file is decoded once,
  // not at every request. Cleared when full.
  std::mutex failures_mutex_;
  std::unordered_map<std::string, MatrixError> failures_;
};

}  // namespace mxcd
