// What happens on upload. The body streams from the network into the blob store, hashed on
// the way; the blob is made durable first and the media record written second, so a record
// never points at missing bytes and a failed upload leaves nothing behind.
// Covers POST upload, async create, and PUT into a created media ID.
#pragma once

#include "auth/authenticator.hpp"
#include "blob/blob_stores.hpp"
#include "core/byte_source.hpp"
#include "core/config.hpp"
#include "media/media_records.hpp"
#include "media/pending_uploads.hpp"

#include <functional>
#include <mutex>
#include <set>

namespace mxcd {

struct UploadRequest {
  ByteSource* body = nullptr;
  std::string content_type;                // as sent; empty means application/octet-stream
  std::optional<std::string> upload_name;  // from ?filename=
};

struct Reservation {
  MediaKey key;
  std::int64_t expires_ts = 0;
};

class UploadPipeline {
 public:
  UploadPipeline(const Config& config, BlobStores& stores, MediaRecords& records,
                 UploadWaiters& waiters);

  // POST upload: a new media ID holding the body.
  boost::asio::awaitable<Result<MediaKey>> upload(const auth::Requester& uploader,
                                                  UploadRequest request);
  // POST create: reserves a media ID for a later PUT.
  boost::asio::awaitable<Result<Reservation>> create(const auth::Requester& uploader);
  // Called with every record that got its bytes (thumbnails are made from it), on the
  // executor of the upload, which it may use for background work.
  using StoredListener = std::function<void(RecordPtr, boost::asio::any_io_executor)>;
  void on_stored(StoredListener listener) { on_stored_ = std::move(listener); }
  // PUT upload/{serverName}/{mediaId}: fills a reserved ID.
  boost::asio::awaitable<Status> fill(const auth::Requester& uploader, const MediaKey& key,
                                      UploadRequest request);

 private:
  Status check_request(const UploadRequest& request);
  // Whether `bytes` more fit on storage.path and leave storage.free_space_reserve free, once
  // cached copies have made room if they must.
  bool fits_on_disk(std::uint64_t bytes);
  // A blob stored for a new record, with the lease that keeps it until the record exists.
  struct StoredBlob {
    BlobId blob;
    std::int64_t lease = 0;
  };
  boost::asio::awaitable<Result<StoredBlob>> store_body(BlobStore& store,
                                                        const UploadRequest& request);
  boost::asio::awaitable<void> tell_stored(const MediaRecord& record);
  MediaRecord new_record(const auth::Requester& uploader, MediaKey key,
                         const UploadRequest& request) const;

  const Config& config_;
  BlobStores& stores_;
  MediaRecords& records_;
  UploadWaiters& waiters_;
  StoredListener on_stored_;

  // Media IDs with a PUT in progress on this instance: a second PUT gets 409 at once
  // instead of streaming a body that fill_pending() would refuse at the end.
  std::mutex filling_mutex_;
  std::set<std::string> filling_;
};

}  // namespace mxcd
