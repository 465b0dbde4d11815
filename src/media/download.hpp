// What happens on download: find the record, wait for an async upload that has not landed
// yet (woken by UploadWaiters, never by polling), apply quarantine and the legacy freeze,
// and open the blob for streaming.
#pragma once

#include "blob/blob_store.hpp"
#include "core/config.hpp"
#include "media/media_records.hpp"
#include "media/pending_uploads.hpp"

namespace mxcd {

struct DownloadRequest {
  MediaKey key;
  bool legacy_path = false;  // the unauthenticated /_matrix/media/*/download path
  Duration wait;             // how long to wait for a pending upload (already capped)
};

struct Download {
  RecordPtr record;
  OpenBlob blob;
};

class DownloadPipeline {
 public:
  DownloadPipeline(const Config& config, BlobStore& blobs, MediaRecords& records,
                   UploadWaiters& waiters);

  boost::asio::awaitable<Result<Download>> fetch(const DownloadRequest& request);

 private:
  boost::asio::awaitable<Result<RecordPtr>> wait_for_upload(const MediaKey& key, Duration wait);

  const Config& config_;
  BlobStore& blobs_;
  MediaRecords& records_;
  UploadWaiters& waiters_;
};

}  // namespace mxcd
