#include "import/synapse_import.hpp"

#include "blob/blob_stores.hpp"
#include "core/blocking.hpp"
#include "core/clock.hpp"
#include "core/identifiers.hpp"
#include "core/unique_fd.hpp"
#include "import/progress.hpp"
#include "import/synapse_config.hpp"
#include "import/synapse_database.hpp"
#include "import/synapse_paths.hpp"
#include "media/media_records.hpp"
#include "media/thumbnail_sizes.hpp"
#include "meta/open_metadata_store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

namespace mxcd::synapse {

namespace asio = boost::asio;

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr std::size_t kPageSize = 500;
constexpr std::size_t kChunk = 1 << 20;

// What happened to each row, for the final report.
struct Tally {
  std::atomic<std::int64_t> imported{0};      // media recorded by this run
  std::atomic<std::int64_t> deduplicated{0};  // of those, content mxcd already held
  std::atomic<std::int64_t> url_previews{0};  // of those, media fetched for URL previews
  std::atomic<std::int64_t> bytes{0};         // stored by this run (originals and thumbnails)
  std::atomic<std::int64_t> thumbnails{0};    // thumbnails recorded by this run
  std::atomic<std::int64_t> already{0};       // media recorded by an earlier run
  std::atomic<std::int64_t> pending{0};       // /create reservations without bytes
  std::atomic<std::int64_t> unservable{0};    // IDs or origins mxcd cannot serve
  std::atomic<std::int64_t> missing{0};       // originals in no store
  std::atomic<std::int64_t> thumbnails_missing{0};
  std::atomic<std::int64_t> thumbnails_skipped{0};  // types mxcd does not serve as stills
  std::atomic<std::int64_t> failed{0};
  std::atomic<std::int64_t> adopted{0};   // files recorded where they are in the bucket
  std::atomic<std::int64_t> verified{0};  // blobs read back with the right hash
  std::atomic<std::int64_t> hashed{0};    // of those, adopted ones hashed just now
};

// Where a file's bytes ended up: a blob in a store, leased until its record refers to it.
struct Stored {
  BlobId blob;
  std::string store;
  std::int64_t lease = 0;
};

// Receives a blob's bytes into a blob writer.
class WriterSink final : public BlobSink {
 public:
  explicit WriterSink(BlobWriter& writer) : writer_(writer) {}
  asio::awaitable<Status> data(const char* bytes, std::size_t size) override {
    co_return writer_.append(bytes, size);
  }

 private:
  BlobWriter& writer_;
};

class Importer {
 public:
  Importer(const Config& config, const ImportOptions& options, const Installation& installation,
           Database& database, MetadataStore& metadata, BlobStores& stores,
           asio::thread_pool& blocking_pool, BlobStore* bucket, std::string bucket_prefix,
           Progress& progress, Tally& tally)
      : config_(config),
        options_(options),
        installation_(installation),
        database_(database),
        metadata_(metadata),
        records_(metadata, blocking_pool, 0),
        stores_(stores),
        blocking_pool_(blocking_pool),
        bucket_(bucket),
        bucket_prefix_(std::move(bucket_prefix)),
        progress_(progress),
        tally_(tally) {}

  // Takes rows until there are none left; several run at once.
  asio::awaitable<void> run_worker(bool verifying) {
    while (auto row = next_row()) {
      try {
        if (verifying) {
          co_await verify_media(*row);
        } else {
          co_await import_row(*row);
        }
      } catch (const std::exception& e) {
        spdlog::error("{}: {}", describe(*row), e.what());
        ++tally_.failed;
      }
      progress_.advance(1, row->length.value_or(0));
    }
  }

  // True when Synapse's database could not be read to the end.
  bool read_failed() const { return read_failed_; }

 private:
  // The next row of Synapse's tables; pages are read by whichever worker runs out first.
  std::optional<MediaRow> next_row() {
    std::lock_guard lock(rows_mutex_);
    if (rows_.empty() && !rows_done_) {
      try {
        auto page = database_.next_page(cursor_, kPageSize);
        if (page.empty()) rows_done_ = true;
        for (auto& row : page) rows_.push_back(std::move(row));
      } catch (const std::exception& e) {
        spdlog::error("cannot read Synapse's database: {}", e.what());
        rows_done_ = true;
        read_failed_ = true;
      }
    }
    if (rows_.empty()) return std::nullopt;
    MediaRow row = std::move(rows_.front());
    rows_.pop_front();
    return row;
  }

  MediaKey key_of(const MediaRow& row) const {
    return MediaKey{row.local ? installation_.server_name : row.origin, row.media_id};
  }

  // The row's mxc URI, for log lines.
  std::string describe(const MediaRow& row) const {
    return mxc_uri(key_of(row).server_name, row.media_id);
  }

  asio::awaitable<void> import_row(const MediaRow& row) {
    if (row.local && !row.length) {
      ++tally_.pending;
      co_return;
    }
    const MediaKey key = key_of(row);
    if (!is_valid_media_id(key.media_id) || !is_valid_server_name(key.server_name)) {
      spdlog::warn("{}: skipped: mxcd serves media IDs of [A-Za-z0-9_-] on valid server names "
                   "only",
                   describe(row));
      ++tally_.unservable;
      co_return;
    }
    auto existing =
        co_await run_blocking(blocking_pool_, [&] { return metadata_.find_media(key); });
    if (!existing) throw std::runtime_error(existing.error().message);
    if (*existing) {
      if ((*existing)->pending()) {
        spdlog::error("{}: mxcd holds a reservation under the same ID", describe(row));
        ++tally_.failed;
        co_return;
      }
      ++tally_.already;
      co_await import_thumbnails(row, key);
      co_return;
    }

    auto path = original_path(row);
    if (!path) {
      spdlog::error("{}: a name in the row cannot be part of a path", describe(row));
      ++tally_.failed;
      co_return;
    }
    const std::string content_type = row.media_type.value_or("application/octet-stream");
    const std::vector<std::string> candidates{*path};
    const MediaKind kind = row.local ? MediaKind::local_media : MediaKind::remote_media;
    auto stored = co_await store_file(kind, candidates, content_type, row.sha256);
    if (!stored) {
      spdlog::error("{}: {}", describe(row), stored.error().message);
      ++tally_.failed;
      co_return;
    }
    if (!*stored) {
      spdlog::warn("{}: skipped: {} is in no store", describe(row), *path);
      ++tally_.missing;
      co_return;
    }
    if (options_.dry_run) {
      count_imported(row);
      co_await import_thumbnails(row, key);
      co_return;
    }

    MediaRecord record;
    record.key = key;
    record.blob = (*stored)->blob;
    record.store = (*stored)->store;
    record.content_type = content_type;
    record.upload_name = row.upload_name;
    record.uploader = row.user_id.value_or("");
    record.created_ts = row.created_ts;
    record.last_access_ts = row.last_access_ts;
    record.quarantined = row.quarantined_by.has_value();
    auto added = co_await add_records(**stored, [&] { return metadata_.add_media({record}); });
    if (!added) {
      spdlog::error("{}: cannot record it: {}", describe(row), added.error().message);
      ++tally_.failed;
      co_return;
    }
    if (*added) {
      count_imported(row);
    } else {
      ++tally_.already;  // recorded meanwhile by another run
    }
    co_await import_thumbnails(row, key);
  }

  // One row imported (or, in a dry run, that would be).
  void count_imported(const MediaRow& row) {
    ++tally_.imported;
    if (row.url_cache) ++tally_.url_previews;
  }

  // Records a stored blob and the rows that refer to it, then gives up the blob's lease.
  // Returns how many rows add() added.
  template <class Add>
  asio::awaitable<Result<std::size_t>> add_records(const Stored& stored, Add add) {
    MetadataStore::BlobRow blob_row{stored.blob, stored.store, now_ms(), std::nullopt};
    auto result = co_await run_blocking(blocking_pool_, [&]() -> Result<std::size_t> {
      auto blobs = metadata_.add_blobs({blob_row});
      if (!blobs) return blobs.error();
      if (*blobs == 0) ++tally_.deduplicated;
      return add();
    });
    records_.release_lease(stored.lease);
    co_return result;
  }

  // Synapse names a thumbnail by the size it came out at; mxcd by the box it was made for.
  // A thumbnail that fills one side of a configured box is that box's; others keep their own
  // size, which a request only finds with the same dynamic size.
  ThumbnailKey thumbnail_key(const MediaKey& media, const ThumbnailRow& thumbnail) const {
    const bool crop = thumbnail.method == "crop";
    ThumbnailBox box =
        choose_thumbnail_box(config_.thumbnails, thumbnail.width, thumbnail.height, crop);
    const bool fits = box.crop == crop && box.width >= thumbnail.width &&
                      box.height >= thumbnail.height &&
                      (crop ? box.width == thumbnail.width && box.height == thumbnail.height
                            : box.width == thumbnail.width || box.height == thumbnail.height);
    if (!fits) box = ThumbnailBox{thumbnail.width, thumbnail.height, crop};
    return ThumbnailKey{media, box.width, box.height, box.crop, false};
  }

  asio::awaitable<void> import_thumbnails(const MediaRow& row, const MediaKey& key) {
    for (const auto& thumbnail : row.thumbnails) {
      // Synapse's thumbnails are JPEG or PNG stills; anything else is left for mxcd to make.
      if ((thumbnail.type != "image/jpeg" && thumbnail.type != "image/png") ||
          (thumbnail.method != "crop" && thumbnail.method != "scale") || thumbnail.width == 0 ||
          thumbnail.height == 0) {
        ++tally_.thumbnails_skipped;
        continue;
      }
      const ThumbnailKey thumbnail_key = this->thumbnail_key(key, thumbnail);
      auto existing = co_await records_.find_thumbnail(thumbnail_key);
      if (!existing) throw std::runtime_error(existing.error().message);
      if (*existing) continue;

      auto paths = thumbnail_paths(row, thumbnail);
      auto stored = co_await store_file(MediaKind::thumbnails, paths, thumbnail.type, std::nullopt);
      if (!stored) {
        spdlog::error("{}: thumbnail {}x{} {}: {}", describe(row), thumbnail.width,
                      thumbnail.height, thumbnail.method, stored.error().message);
        ++tally_.failed;
        continue;
      }
      if (!*stored) {
        ++tally_.thumbnails_missing;
        continue;
      }
      if (options_.dry_run) {
        ++tally_.thumbnails;
        continue;
      }
      ThumbnailRecord record{thumbnail_key, (*stored)->blob, (*stored)->store, thumbnail.type,
                             row.created_ts};
      auto added =
          co_await add_records(**stored, [&] { return metadata_.add_thumbnails({record}); });
      if (!added) {
        spdlog::error("{}: cannot record a thumbnail: {}", describe(row), added.error().message);
        ++tally_.failed;
        continue;
      }
      tally_.thumbnails += static_cast<std::int64_t>(*added);
    }
  }

  // Stores the first of the candidate files that exists: from the media store on disk, else
  // from the bucket. Adopting, an object in the bucket is recorded where it is instead, and
  // comes first: what the bucket holds need not travel at all. nullopt when no candidate
  // exists anywhere. A dry run only looks.
  asio::awaitable<Result<std::optional<Stored>>> store_file(
      MediaKind kind, const std::vector<std::string>& candidates, const std::string& content_type,
      const std::optional<std::string>& known_sha256) {
    const bool adopting =
        bucket_ != nullptr && options_.bucket_media == ImportOptions::BucketMedia::adopt;
    for (const auto& relative : candidates) {
      if (!adopting) break;
      auto object = co_await bucket_object(relative);
      if (!object) co_return object.error();
      if (!*object) continue;
      if (options_.dry_run) co_return looked_at((*object)->size);
      co_return co_await adopt(std::move(**object), known_sha256);
    }
    for (const auto& relative : candidates) {
      const auto path = installation_.media_store / relative;
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      struct stat st {};
      if (fd.get() >= 0 && fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode)) {
        if (options_.dry_run) co_return looked_at(static_cast<std::uint64_t>(st.st_size));
        co_return co_await store_from_disk(kind, fd.get(), content_type);
      }
      if (bucket_ == nullptr || adopting) continue;
      auto object = co_await bucket_object(relative);
      if (!object) co_return object.error();
      if (!*object) continue;
      if (options_.dry_run) co_return looked_at((*object)->size);
      co_return co_await store_from_bucket(kind, **object, content_type);
    }
    co_return std::optional<Stored>();
  }

  // The provider's object for a media-store path, as a blob at its key in the bucket store;
  // nullopt when there is none.
  asio::awaitable<Result<std::optional<BlobId>>> bucket_object(const std::string& relative) {
    const std::string key = bucket_prefix_ + relative;
    co_return co_await bucket_->find_adoptable(key);
  }

  // A dry run's answer for a file found: counted, nothing stored.
  std::optional<Stored> looked_at(std::uint64_t size) {
    tally_.bytes += static_cast<std::int64_t>(size);
    return Stored{};
  }

  // Records the object as a blob at its key. Its name is the hash Synapse recorded, when it
  // did (--verify checks it); else its unhashed id until --verify reads the object.
  asio::awaitable<Result<std::optional<Stored>>> adopt(
      BlobId blob, const std::optional<std::string>& known_sha256) {
    if (known_sha256 && is_sha256_hex(*known_sha256)) blob.name = *known_sha256;
    auto lease = co_await records_.lease_adopted_blob(blob.name);
    if (!lease) co_return lease.error();
    ++tally_.adopted;
    co_return std::optional<Stored>(Stored{std::move(blob), std::string(bucket_->name()), *lease});
  }

  // Reads run on the worker's own thread: each worker is one thread, and an import has
  // nothing else to do meanwhile.
  asio::awaitable<Result<std::optional<Stored>>> store_from_disk(MediaKind kind, int fd,
                                                                 const std::string& content_type) {
    BlobStore& store = stores_.write_store(kind);
    auto writer = store.begin_write(content_type);
    if (!writer) co_return writer.error();
    auto buffer = std::make_unique<char[]>(kChunk);
    while (true) {
      ssize_t n = ::read(fd, buffer.get(), kChunk);
      if (n < 0)
        co_return MatrixError::internal(std::string("cannot read: ") + std::strerror(errno));
      if (n == 0) break;
      if (auto status = (*writer)->append(buffer.get(), static_cast<std::size_t>(n)); !status) {
        co_return status.error();
      }
    }
    co_return co_await commit(**writer, store);
  }

  asio::awaitable<Result<std::optional<Stored>>> store_from_bucket(
      MediaKind kind, const BlobId& object, const std::string& content_type) {
    BlobStore& store = stores_.write_store(kind);
    auto writer = store.begin_write(content_type);
    if (!writer) co_return writer.error();
    WriterSink sink(**writer);
    if (auto status = co_await bucket_->read(object, sink); !status) co_return status.error();
    co_return co_await commit(**writer, store);
  }

  asio::awaitable<Result<std::optional<Stored>>> commit(BlobWriter& writer, BlobStore& store) {
    BlobId blob = writer.finish();
    auto lease = co_await records_.commit_leased(writer, blob, store.name());
    if (!lease) co_return lease.error();
    tally_.bytes += static_cast<std::int64_t>(blob.size);
    co_return std::optional<Stored>(Stored{std::move(blob), std::string(store.name()), *lease});
  }

  // --- Verification: every blob an imported row refers to, read back from its store ---

  asio::awaitable<void> verify_media(const MediaRow& row) {
    if (row.local && !row.length) co_return;
    const MediaKey key = key_of(row);
    if (!is_valid_media_id(key.media_id) || !is_valid_server_name(key.server_name)) co_return;
    auto record = co_await run_blocking(blocking_pool_, [&] { return metadata_.find_media(key); });
    if (!record) throw std::runtime_error(record.error().message);
    if (!*record || (*record)->pending()) co_return;
    co_await verify_blob(row, *(*record)->blob, (*record)->store);
    for (const auto& thumbnail : row.thumbnails) {
      auto found = co_await records_.find_thumbnail(thumbnail_key(key, thumbnail));
      if (!found) throw std::runtime_error(found.error().message);
      if (*found) co_await verify_blob(row, (*found)->blob, (*found)->store);
    }
  }

  asio::awaitable<void> verify_blob(const MediaRow& row, const BlobId& blob,
                                    const std::string& store_name) {
    {
      std::lock_guard lock(verified_mutex_);
      if (!verified_.insert(blob.name).second) co_return;  // shared with an earlier row
    }
    BlobStore* store = stores_.find(store_name);
    if (store == nullptr) {
      spdlog::error("{}: its blob is in store {}, which the configuration lacks", describe(row),
                    store_name);
      ++tally_.failed;
      co_return;
    }
    // For a bucket, the object itself, not a local cached copy.
    auto read = co_await store->digest(blob);
    if (!read) {
      spdlog::error("{}: cannot read blob {} back from store {}: {}", describe(row), blob.name,
                    store_name, read.error().message);
      ++tally_.failed;
      co_return;
    }
    const auto& [sha256, size] = *read;
    if (is_unhashed(blob) && size == blob.size) {
      const BlobId hashed{sha256, size, blob.location};
      co_await name_by_hash(row, blob, hashed);
      co_return;
    }
    if (sha256 != blob.name || size != blob.size) {
      spdlog::error("{}: blob {} ({} bytes) in store {} holds {} bytes hashing to {}",
                    describe(row), blob.name, blob.size, store_name, size, sha256);
      ++tally_.failed;
      co_return;
    }
    ++tally_.verified;
  }

  // An adopted blob, hashed at last, takes its hash as its name; when mxcd already holds the
  // same content, its records move to that blob and the adopted object is deleted.
  asio::awaitable<void> name_by_hash(const MediaRow& row, const BlobId& unhashed,
                                     const BlobId& hashed) {
    auto replaced = co_await run_blocking(
        blocking_pool_, [&] { return metadata_.replace_blob(unhashed.name, hashed); });
    if (!replaced) {
      spdlog::error("{}: cannot name blob {} by its hash {}: {}", describe(row), unhashed.name,
                    hashed.name, replaced.error().message);
      ++tally_.failed;
      co_return;
    }
    ++tally_.verified;
    ++tally_.hashed;
  }

  const Config& config_;
  const ImportOptions& options_;
  const Installation& installation_;
  Database& database_;
  MetadataStore& metadata_;
  MediaRecords records_;
  BlobStores& stores_;
  asio::thread_pool& blocking_pool_;
  BlobStore* bucket_;  // the S3 store holding the provider's objects, if any
  const std::string bucket_prefix_;
  Progress& progress_;
  Tally& tally_;

  std::mutex rows_mutex_;
  std::deque<MediaRow> rows_;
  MediaCursor cursor_;
  bool rows_done_ = false;
  bool read_failed_ = false;

  std::mutex verified_mutex_;
  std::set<std::string> verified_;
};

// The installation from homeserver.yaml, with the flags' replacements.
std::optional<Installation> resolve_installation(const ImportOptions& options) {
  Installation installation;
  if (!options.homeserver_config.empty()) {
    try {
      installation = read_homeserver_config(options.homeserver_config);
    } catch (const ConfigProblem& e) {
      spdlog::error("{}", e.what());
      return std::nullopt;
    }
  }
  if (!options.server_name.empty()) installation.server_name = options.server_name;
  if (!options.media_store.empty()) installation.media_store = options.media_store;
  if (!options.sqlite_path.empty() || !options.postgres_conninfo.empty()) {
    installation.sqlite_path = options.sqlite_path;
    installation.postgres_conninfo = options.postgres_conninfo;
  }
  if (installation.server_name.empty() || installation.media_store.empty() ||
      (installation.sqlite_path.empty() == installation.postgres_conninfo.empty())) {
    spdlog::error("name Synapse's homeserver.yaml (--homeserver-config), or its server name, "
                  "media store and one database (--server-name, --media-store, --sqlite or "
                  "--postgres)");
    return std::nullopt;
  }
  return installation;
}

// Runs `workers` copies of the worker on their own threads and waits for them.
template <class Worker>
void run_workers(asio::io_context& io, unsigned workers, Worker worker) {
  io.restart();
  for (unsigned i = 0; i < workers; ++i) asio::co_spawn(io, worker(), asio::detached);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < workers; ++i) threads.emplace_back([&io] { io.run(); });
  for (auto& thread : threads) thread.join();
}

void print_report(std::ostream& out, const Tally& tally, const ImportOptions& options,
                  bool verified) {
  const char* would = options.dry_run ? "would be " : "";
  out << (options.dry_run ? "dry run, nothing changed\n" : "")
      << "imported:      " << tally.imported << " media " << would << "imported ("
      << tally.url_previews << " of them URL-preview media), " << tally.thumbnails
      << " thumbnails, " << human_bytes(tally.bytes) << "\n"
      << "deduplicated:  " << tally.deduplicated
      << " files whose content mxcd already held (stored once)\n"
      << "already there: " << tally.already << " media recorded by an earlier run\n"
      << "skipped:       " << tally.pending << " pending uploads (reserved, never uploaded), "
      << tally.unservable << " with IDs mxcd cannot serve, " << tally.thumbnails_skipped
      << " thumbnails of types mxcd makes itself\n"
      << "missing:       " << tally.missing << " media and " << tally.thumbnails_missing
      << " thumbnails whose file is in no store\n";
  if (tally.adopted) {
    out << "adopted:       " << tally.adopted << " files recorded where they are in the bucket"
        << (verified ? "" : " (--verify hashes those Synapse recorded no hash for)") << "\n";
  }
  if (verified) {
    out << "verified:      " << tally.verified << " blobs read back intact (" << tally.hashed
        << " adopted ones hashed now)\n";
  }
  out << "failed:        " << tally.failed << (tally.failed ? " (see the log)" : "") << "\n";
}

}  // namespace

int import_media(const Config& config, const ImportOptions& options, std::ostream& out) {
  auto installation = resolve_installation(options);
  if (!installation) return kExitUsage;
  if (installation->server_name != config.server_name) {
    spdlog::error("Synapse's server_name is {} but mxcd's is {}: local media is recorded under "
                  "its server name, so they must be the same",
                  installation->server_name, config.server_name);
    return kExitUsage;
  }
  if (!std::filesystem::is_directory(installation->media_store)) {
    spdlog::error("Synapse's media store {} is not a directory",
                  installation->media_store.string());
    return kExitUsage;
  }

  // Every blob goes to its bucket before its record is made, whatever the stores' durability
  // says: with "background", an import would otherwise queue the whole media store on local
  // disk until a server drains the queue.
  Config store_config = config;
  for (auto& store : store_config.stores) store.s3.durability = S3StoreConfig::Durability::sync;

  const unsigned workers = std::max(1U, options.workers);
  asio::thread_pool blocking_pool(workers + 1);
  // The workers' context: S3 connections kept for reuse belong to it, so it outlives the stores.
  asio::io_context io;
  std::unique_ptr<Database> database;
  std::unique_ptr<MetadataStore> metadata;
  std::unique_ptr<BlobStores> stores;
  try {
    database = Database::open(*installation);
    // A dry run reads the database as it is, creating and migrating nothing.
    metadata = open_metadata_store(
        config.database, options.dry_run ? MetadataOpening::inspect : MetadataOpening::migrate);
    stores = std::make_unique<BlobStores>(
        store_config, blocking_pool,
        options.dry_run ? StoreOpening::inspect : StoreOpening::recover);
  } catch (const std::exception& e) {
    spdlog::error("cannot import: {}", e.what());
    return kExitFailed;
  }
  if (auto problems = stores->check_buckets(); !problems.empty()) {
    for (const auto& problem : problems) spdlog::error("cannot import: {}", problem);
    return kExitFailed;
  }

  BlobStore* bucket = nullptr;
  std::string prefix;
  if (!options.bucket_store.empty()) {
    auto s3_store =
        std::find_if(config.stores.begin(), config.stores.end(), [&](const StoreConfig& store) {
          return store.name == options.bucket_store && store.type == StoreConfig::Type::s3;
        });
    if (s3_store == config.stores.end()) {
      spdlog::error("--bucket-store {} is not an S3 store of mxcd's configuration",
                    options.bucket_store);
      return kExitUsage;
    }
    bucket = stores->find(options.bucket_store);
    const auto& provider = installation->provider_bucket;
    prefix = options.bucket_prefix.value_or(
        provider && provider->bucket == s3_store->s3.bucket ? provider->prefix : "");
  }

  Database::Totals totals;
  try {
    totals = database->totals();
  } catch (const std::exception& e) {
    spdlog::error("cannot read Synapse's database: {}", e.what());
    return kExitFailed;
  }
  Tally tally;
  bool read_failed = false;
  for (bool verifying : {false, true}) {
    if (verifying && (!options.verify || options.dry_run)) break;
    Progress progress(std::cerr, verifying ? "verify" : (options.dry_run ? "dry run" : "import"),
                      totals.media, totals.bytes, options.progress, options.progress_interval);
    Importer importer(config, options, *installation, *database, *metadata, *stores, blocking_pool,
                      bucket, prefix, progress, tally);
    run_workers(io, workers, [&] { return importer.run_worker(verifying); });
    progress.finish();
    read_failed = read_failed || importer.read_failed();
  }
  stores->stop();
  blocking_pool.join();  // lease releases still queued
  print_report(out, tally, options, options.verify && !options.dry_run);
  if (read_failed) out << "Synapse's database could not be read to the end (see the log)\n";
  return tally.failed || read_failed ? kExitFailed : 0;
}

}  // namespace mxcd::synapse
