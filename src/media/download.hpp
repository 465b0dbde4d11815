// What happens on download: find the record, wait for an async upload that has not landed
// yet (woken by UploadWaiters, never by polling), apply quarantine and the legacy freeze;
// then open the blob in the store that holds it, or name a URL to redirect to.
#pragma once

#include "blob/blob_stores.hpp"
#include "core/config.hpp"
#include "media/media_records.hpp"
#include "media/pending_uploads.hpp"

namespace mxcd {

struct DownloadRequest {
  MediaKey key;
  bool legacy_path = false;  // the unauthenticated /_matrix/media/*/download path
  Duration wait;             // how long to wait for a pending upload (already capped)
};

class DownloadPipeline {
 public:
  DownloadPipeline(const Config& config, BlobStores& stores, MediaRecords& records,
                   UploadWaiters& waiters);

  // The record of servable media.
  boost::asio::awaitable<Result<RecordPtr>> find(const DownloadRequest& request);
  // Its bytes; only the range when one is given and the store can fetch less.
  boost::asio::awaitable<Result<OpenBlob>> open(const MediaRecord& record,
                                                std::optional<ByteSpan> range);
  // Where the client may fetch the bytes itself, when the store redirects.
  std::optional<std::string> redirect_url(const MediaRecord& record,
                                          const RedirectHeaders& headers);

 private:
  boost::asio::awaitable<Result<RecordPtr>> wait_for_upload(const MediaKey& key, Duration wait);

  const Config& config_;
  BlobStores& stores_;
  MediaRecords& records_;
  UploadWaiters& waiters_;
};

}  // namespace mxcd
