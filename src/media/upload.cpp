#include "media/upload.hpp"

#include "blob/free_space.hpp"
#include "core/clock.hpp"
#include "core/content_disposition.hpp"
#include "core/identifiers.hpp"

#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <memory>

namespace mxcd {

namespace asio = boost::asio;

namespace {

// Bytes read from the network per step. This, not the file size, bounds an upload's memory.
constexpr std::size_t kUploadChunk = 128 * 1024;
// How often a body without a length asks the disk for room (a statvfs each time): once per
// this many bytes, asking each time for room for the next that many.
constexpr std::uint64_t kFreeSpaceStep = 1024 * 1024;

MatrixError fill_refusal(MetadataStore::FillOutcome outcome) {
  switch (outcome) {
    case MetadataStore::FillOutcome::forbidden:
      return MatrixError::forbidden("This media ID was created by another user");
    case MetadataStore::FillOutcome::already_filled:
      return MatrixError::cannot_overwrite();
    default:
      return MatrixError::not_found("Unknown or expired media ID");
  }
}

void log_upload(const MediaRecord& record, const auth::Requester& uploader) {
  spdlog::info("uploaded {} ({} bytes, blob {}) by {}",
               mxc_uri(record.key.server_name, record.key.media_id), record.blob->size,
               record.blob->name, uploader.user_id);
}

std::string content_type_of(const UploadRequest& request) {
  return request.content_type.empty() ? "application/octet-stream" : request.content_type;
}

MatrixError too_large(std::uint64_t limit) {
  return MatrixError::too_large("The upload is larger than the " + std::to_string(limit) +
                                "-byte limit");
}

}  // namespace

UploadPipeline::UploadPipeline(const Config& config, BlobStores& stores, MediaRecords& records,
                               UploadWaiters& waiters)
    : config_(config), stores_(stores), records_(records), waiters_(waiters) {}

Status UploadPipeline::check_request(const UploadRequest& request) {
  if (request.upload_name && !is_valid_upload_name(*request.upload_name)) {
    return MatrixError::invalid_param(
        "filename must be 1 to 255 bytes of UTF-8 without control characters");
  }
  // Refuse from the announced length, before a byte of the body is read.
  if (auto length = request.body->announced_length();
      length && *length > config_.media.max_upload_size) {
    return too_large(config_.media.max_upload_size);
  }
  if (auto length = request.body->announced_length(); length && !fits_on_disk(*length)) {
    return MatrixError::insufficient_storage();
  }
  return {};
}

bool UploadPipeline::fits_on_disk(std::uint64_t bytes) {
  // Uploads to every store are written to storage.path first: the local store's blobs, or
  // an S3 store's spool file. A disk whose space cannot be read is not refused here; its
  // writes still fail with 507 if it is full.
  const std::uint64_t reserve = config_.storage.free_space_reserve;
  auto space = disk_space(config_.storage.path);
  if (!space || body_fits(bytes, space->available, reserve)) return true;
  // Cached copies of bucket objects share that disk and can be fetched again: they make room
  // before an upload is refused.
  const std::uint64_t available = space->available;
  const std::uint64_t wanted =
      available < reserve ? reserve - available + bytes : bytes - (available - reserve);
  std::uint64_t freed = 0;
  for (BlobStore* store : stores_.all()) {
    if (freed < wanted) freed += store->release_space(wanted - freed);
  }
  if (freed == 0) return false;
  space = disk_space(config_.storage.path);
  return !space || body_fits(bytes, space->available, reserve);
}

asio::awaitable<Result<UploadPipeline::StoredBlob>> UploadPipeline::store_body(
    BlobStore& store, const UploadRequest& request) {
  ByteSource& body = *request.body;
  auto writer = store.begin_write(content_type_of(request));
  if (!writer) co_return writer.error();
  auto buffer = std::make_unique<char[]>(kUploadChunk);
  std::uint64_t room_until = 0;  // bytes the last free-space check made room for
  while (true) {
    auto n = co_await body.read_some(asio::buffer(buffer.get(), kUploadChunk));
    if (!n) co_return n.error();  // the writer's destructor removes the partial file
    if (*n == 0) break;
    // Chunked bodies announce no length: the limit is enforced as the bytes arrive.
    if ((*writer)->size() + *n > config_.media.max_upload_size) {
      co_return too_large(config_.media.max_upload_size);
    }
    // Nor can they be refused before they come: every kFreeSpaceStep bytes, the next step's
    // bytes must fit (those already written are not counted again). A disk that fills
    // faster still fails the write itself with 507.
    if ((*writer)->size() + *n > room_until) {
      if (!fits_on_disk(kFreeSpaceStep)) co_return MatrixError::insufficient_storage();
      room_until = (*writer)->size() + kFreeSpaceStep;
    }
    if (auto status = (*writer)->append(buffer.get(), *n); !status) co_return status.error();
  }
  BlobId blob = (*writer)->finish();
  auto lease = co_await records_.commit_leased(**writer, blob, store.name());
  if (!lease) co_return lease.error();
  co_return StoredBlob{std::move(blob), *lease};
}

asio::awaitable<void> UploadPipeline::tell_stored(const MediaRecord& record) {
  if (on_stored_) {
    on_stored_(std::make_shared<const MediaRecord>(record), co_await asio::this_coro::executor);
  }
}

MediaRecord UploadPipeline::new_record(const auth::Requester& uploader, MediaKey key,
                                       const UploadRequest& request) const {
  MediaRecord record;
  record.key = std::move(key);
  record.content_type = content_type_of(request);
  record.upload_name = request.upload_name;
  record.uploader = uploader.user_id;
  record.created_ts = now_ms();
  return record;
}

asio::awaitable<Result<MediaKey>> UploadPipeline::upload(const auth::Requester& uploader,
                                                         UploadRequest request) {
  if (auto status = check_request(request); !status) co_return status.error();
  BlobStore& store = stores_.write_store(MediaKind::local_media);
  auto stored = co_await store_body(store, request);
  if (!stored) co_return stored.error();
  MediaRecord record = new_record(uploader, {config_.server_name, generate_media_id()}, request);
  record.blob = stored->blob;
  record.store = std::string(store.name());
  if (auto status = co_await records_.insert(record, stored->lease); !status) {
    records_.release_lease(stored->lease);
    co_return status.error();
  }
  log_upload(record, uploader);
  co_await tell_stored(record);
  co_return record.key;
}

asio::awaitable<Result<Reservation>> UploadPipeline::create(const auth::Requester& uploader) {
  MediaRecord record = new_record(uploader, {config_.server_name, generate_media_id()}, {});
  record.pending_expires_ts = record.created_ts + config_.media.pending_upload_expiry.count();
  auto outcome =
      co_await records_.reserve_pending(record, config_.media.max_pending_uploads_per_user);
  if (!outcome) co_return outcome.error();
  if (!outcome->reserved) {
    co_return MatrixError::limit_exceeded("Too many pending uploads; finish or wait for one",
                                          outcome->oldest_expiry_ts - now_ms());
  }
  co_return Reservation{record.key, *record.pending_expires_ts};
}

asio::awaitable<Status> UploadPipeline::fill(const auth::Requester& uploader, const MediaKey& key,
                                             UploadRequest request) {
  if (key.server_name != config_.server_name) {
    co_return MatrixError::not_found("Media can only be uploaded to this server");
  }
  if (auto status = check_request(request); !status) co_return status.error();

  // Answer 403/404/409 before reading the body when the record already tells.
  auto existing = co_await records_.find_fresh(key);
  if (!existing) co_return existing.error();
  const RecordPtr& current = *existing;
  if (!current || (current->pending() && current->pending_expires_ts <= now_ms())) {
    co_return fill_refusal(MetadataStore::FillOutcome::not_found);
  }
  if (current->uploader != uploader.user_id) {
    co_return fill_refusal(MetadataStore::FillOutcome::forbidden);
  }
  if (!current->pending()) co_return fill_refusal(MetadataStore::FillOutcome::already_filled);

  const std::string filling_key = key.server_name + '/' + key.media_id;
  {
    std::lock_guard lock(filling_mutex_);
    if (!filling_.insert(filling_key).second) co_return MatrixError::cannot_overwrite();
  }
  struct Release {
    UploadPipeline& self;
    const std::string& key;
    ~Release() {
      std::lock_guard lock(self.filling_mutex_);
      self.filling_.erase(key);
    }
  } release{*this, filling_key};

  BlobStore& store = stores_.write_store(MediaKind::local_media);
  auto stored = co_await store_body(store, request);
  if (!stored) co_return stored.error();
  MediaRecord record = new_record(uploader, key, request);
  record.blob = stored->blob;
  record.store = std::string(store.name());
  auto outcome = co_await records_.fill_pending(record, stored->lease);
  if (!outcome || *outcome != MetadataStore::FillOutcome::filled) {
    records_.release_lease(stored->lease);
    if (!outcome) co_return outcome.error();
    // The reservation may have expired, or another instance filled it, while the body streamed.
    co_return fill_refusal(*outcome);
  }
  waiters_.announce(key);
  log_upload(record, uploader);
  co_await tell_stored(record);
  co_return Status();
}

}  // namespace mxcd
