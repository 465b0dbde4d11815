#include "media/download.hpp"

#include "core/clock.hpp"
#include "core/identifiers.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace mxcd {

namespace asio = boost::asio;

namespace {
MatrixError not_found() { return MatrixError::not_found("Media not found"); }
}  // namespace

DownloadPipeline::DownloadPipeline(const Config& config, BlobStores& stores, MediaRecords& records,
                                   UploadWaiters& waiters)
    : config_(config), stores_(stores), records_(records), waiters_(waiters) {}

asio::awaitable<Result<RecordPtr>> DownloadPipeline::find(const DownloadRequest& request) {
  // Media of other servers is served when it is recorded here (a cache imported from
  // Synapse); fetching it over federation is not implemented yet.
  auto found = co_await records_.find(request.key);
  if (!found) co_return found.error();
  if (!*found) co_return not_found();
  RecordPtr record = std::move(*found);
  if (record->pending()) {
    // Checked before the freeze: a client waiting on the legacy path must get its 504.
    auto uploaded = co_await wait_for_upload(request.key, request.wait);
    if (!uploaded) co_return uploaded.error();
    record = std::move(*uploaded);
  }
  if (record->quarantined) co_return not_found();
  if (request.legacy_path && config_.media.legacy_download_freeze_ms &&
      record->created_ts >= *config_.media.legacy_download_freeze_ms) {
    co_return MatrixError::not_found(
        "Media created after the freeze is only served on /_matrix/client/v1/media");
  }
  records_.note_access(request.key);
  co_return record;
}

asio::awaitable<Result<OpenBlob>> DownloadPipeline::open(const MediaRecord& record,
                                                         std::optional<ByteSpan> range) {
  BlobStore* store = stores_.find(record.store);
  if (!store) {
    spdlog::error("{} is in store \"{}\", which is no longer configured",
                  mxc_uri(record.key.server_name, record.key.media_id), record.store);
    co_return MatrixError::unavailable("The media's store is not configured");
  }
  co_return co_await store->open(*record.blob, range);
}

std::optional<std::string> DownloadPipeline::redirect_url(const MediaRecord& record,
                                                          const RedirectHeaders& headers) {
  BlobStore* store = stores_.find(record.store);
  return store ? store->redirect_url(*record.blob, headers) : std::nullopt;
}

asio::awaitable<Result<RecordPtr>> DownloadPipeline::wait_for_upload(const MediaKey& key,
                                                                     Duration wait) {
  // Subscribe first, then look: an upload landing between the two still wakes us.
  auto subscription = co_await waiters_.subscribe(key);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    auto found = co_await records_.find_fresh(key);
    if (!found) co_return found.error();
    if (!*found) co_return not_found();
    RecordPtr record = std::move(*found);
    if (!record->pending()) co_return record;
    const std::int64_t now = now_ms();
    if (record->pending_expires_ts <= now) co_return not_found();
    auto remaining =
        std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) co_return MatrixError::not_yet_uploaded();
    co_await subscription->wait(std::min(remaining, Duration(*record->pending_expires_ts - now)));
  }
}

}  // namespace mxcd
