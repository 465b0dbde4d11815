#include "blob/blob_stores.hpp"

#include "blob/fs/fs_blob_store.hpp"
#include "blob/s3/s3_blob_store.hpp"
#include "blob/s3/upload_queue.hpp"

namespace mxcd {

BlobStores::BlobStores(const Config& config, boost::asio::thread_pool& blocking_pool,
                       StoreOpening opening)
    : config_(config) {
  stores_.emplace(
      kLocalStoreName,
      std::make_unique<FsBlobStore>(kLocalStoreName, config.storage.path, blocking_pool, opening));
  for (const auto& store : config.stores) {
    if (store.type == StoreConfig::Type::filesystem) {
      stores_.emplace(store.name, std::make_unique<FsBlobStore>(store.name, store.path,
                                                                blocking_pool, opening));
    } else {
      auto s3 = std::make_unique<S3BlobStore>(store, config.storage.path, blocking_pool, opening);
      s3_stores_.push_back(s3.get());
      stores_.emplace(store.name, std::move(s3));
    }
  }
  for (auto& [name, store] : stores_) all_.push_back(store.get());
}

BlobStores::~BlobStores() = default;

BlobStore* BlobStores::find(std::string_view name) {
  auto it = stores_.find(name);
  return it == stores_.end() ? nullptr : it->second.get();
}

BlobStore& BlobStores::write_store(MediaKind kind) {
  const auto& names = config_.media.write_store;
  const std::string& name = kind == MediaKind::local_media    ? names.local_media
                            : kind == MediaKind::remote_media ? names.remote_media
                                                              : names.thumbnails;
  return *find(name);  // the configuration loader checked that the name exists
}

std::vector<BlobStores::QueueReport> BlobStores::report_queues(const Config& config) {
  std::vector<QueueReport> reports;
  for (const auto& store : config.stores) {
    if (store.type != StoreConfig::Type::s3) continue;
    QueueReport& report = reports.emplace_back();
    report.store = store.name;
    report.bucket = store.s3.bucket;
    const auto queued = queue_dir(config.storage.path, store.name);
    const auto cached = blobs_dir(cache_root(config.storage.path, store.name));
    for (const auto& blob : UploadQueue(queued, StoreOpening::inspect).list()) {
      std::error_code ec;
      auto size = std::filesystem::file_size(cached / spread_blob_name(blob.sha256), ec);
      report.bytes += ec ? 0 : size;
      if (report.blobs++ == 0) report.oldest_queued_ts = blob.queued_ts;
    }
  }
  return reports;
}

std::vector<std::string> BlobStores::check_buckets() {
  std::vector<std::string> problems;
  for (auto* store : s3_stores_) {
    if (auto problem = store->check_bucket()) problems.push_back(*problem);
  }
  return problems;
}

void BlobStores::start(boost::asio::io_context& context) {
  for (auto* store : s3_stores_) store->start(context);
}

void BlobStores::stop() {
  for (auto* store : all_) store->stop();
}

}  // namespace mxcd
