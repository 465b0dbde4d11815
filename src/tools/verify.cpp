#include "tools/verify.hpp"

#include "blob/blob_stores.hpp"
#include "meta/open_metadata_store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <iostream>
#include <vector>

namespace mxcd {

namespace asio = boost::asio;

namespace {

constexpr int kExitDamaged = 1;
constexpr int kExitUsage = 2;
constexpr std::size_t kPage = 500;
// Problems named in the report; the log names every one.
constexpr std::size_t kNamedProblems = 1000;

struct Tally {
  std::int64_t checked = 0;
  std::int64_t good = 0;
  std::int64_t unhashed = 0;  // of the good ones: only their size could be checked
  std::int64_t bad = 0;
  std::int64_t missing = 0;
  std::int64_t failed = 0;  // could not be read
  std::int64_t bytes = 0;   // read back
  std::vector<std::string> problems;
  std::int64_t problems_not_named = 0;
};

// The blob rows to check, page by page: every blob a record refers to, in the chosen store.
// Blobs nothing refers to any more are left out: the collector may delete them any moment.
class BlobCursor {
 public:
  BlobCursor(MetadataStore& metadata, std::string store)
      : metadata_(metadata), store_(std::move(store)) {}

  // nullopt at the end; throws std::runtime_error when the metadata store fails.
  std::optional<MetadataStore::BlobRow> next() {
    while (rows_.empty() && !done_) {
      auto page = metadata_.list_blobs(after_, kPage);
      if (!page) throw std::runtime_error("cannot list blobs: " + page.error().message);
      done_ = page->size() < kPage;
      if (!page->empty()) after_ = page->back().blob.name;
      for (auto& row : *page) {
        if (row.unreferenced_since_ts) continue;
        if (!store_.empty() && row.store != store_) continue;
        rows_.push_back(std::move(row));
      }
    }
    if (rows_.empty()) return std::nullopt;
    auto row = std::move(rows_.front());
    rows_.pop_front();
    return row;
  }

 private:
  MetadataStore& metadata_;
  const std::string store_;
  std::string after_;
  std::deque<MetadataStore::BlobRow> rows_;
  bool done_ = false;
};

class Verifier {
 public:
  Verifier(BlobStores& stores, BlobCursor& cursor, Progress& progress, Tally& tally)
      : stores_(stores), cursor_(cursor), progress_(progress), tally_(tally) {}

  // Several run at once on one thread: nothing here needs a lock.
  asio::awaitable<void> run_worker() {
    while (true) {
      std::optional<MetadataStore::BlobRow> row;
      try {
        row = cursor_.next();
      } catch (const std::exception& e) {
        if (!listing_failed_) spdlog::error("{}", e.what());
        listing_failed_ = true;
      }
      if (!row) co_return;
      co_await check(row->blob, row->store);
      progress_.advance(1, static_cast<std::int64_t>(row->blob.size));
    }
  }

  bool listing_failed() const { return listing_failed_; }

 private:
  asio::awaitable<void> check(const BlobId& blob, const std::string& store_name) {
    ++tally_.checked;
    BlobStore* store = stores_.find(store_name);
    if (store == nullptr) {
      ++tally_.failed;
      report("unreadable blob " + blob.name + ": its store " + store_name +
             " is not in the configuration");
      co_return;
    }
    const std::string where = "in store " + store_name + " at " + store->describe_location(blob);
    auto found = co_await store->digest(blob);
    if (!found) {
      if (found.error().status == 404) {
        ++tally_.missing;
        report("missing blob " + blob.name + " (" + std::to_string(blob.size) + " bytes) " + where);
      } else {
        ++tally_.failed;
        report("unreadable blob " + blob.name + " " + where + ": " + found.error().message);
      }
      co_return;
    }
    tally_.bytes += static_cast<std::int64_t>(found->size);
    // An adopted blob not hashed yet has a name that says nothing of its bytes.
    const bool unhashed = is_unhashed(blob);
    if (found->size == blob.size && (unhashed || found->sha256 == blob.name)) {
      ++tally_.good;
      if (unhashed) ++tally_.unhashed;
      co_return;
    }
    ++tally_.bad;
    report("bad blob " + blob.name + " (" + std::to_string(blob.size) + " bytes) " + where +
           ": holds " + std::to_string(found->size) + " bytes hashing to " + found->sha256);
  }

  void report(std::string problem) {
    spdlog::error("{}", problem);
    if (tally_.problems.size() < kNamedProblems) {
      tally_.problems.push_back(std::move(problem));
    } else {
      ++tally_.problems_not_named;
    }
  }

  BlobStores& stores_;
  BlobCursor& cursor_;
  Progress& progress_;
  Tally& tally_;
  bool listing_failed_ = false;
};

void print_report(std::ostream& out, const Tally& tally) {
  for (const auto& problem : tally.problems) out << problem << "\n";
  if (tally.problems_not_named) {
    out << "... and " << tally.problems_not_named << " more (the log names them)\n";
  }
  out << "checked: " << tally.checked << " blobs, " << human_bytes(tally.bytes) << " read\n"
      << "good:    " << tally.good;
  if (tally.unhashed) {
    out << " (" << tally.unhashed
        << " adopted ones by their size only: `mxcd import synapse --verify` hashes them)";
  }
  out << "\n"
      << "bad:     " << tally.bad << "\n"
      << "missing: " << tally.missing << "\n"
      << "unreadable: " << tally.failed << "\n";
}

}  // namespace

int verify_stores(const Config& config, const VerifyOptions& options, std::ostream& out) {
  if (!options.store.empty() && options.store != kLocalStoreName &&
      std::none_of(config.stores.begin(), config.stores.end(),
                   [&](const StoreConfig& s) { return s.name == options.store; })) {
    std::cerr << "--store " << options.store << " names no store of the configuration\n";
    return kExitUsage;
  }
  const unsigned workers = std::max(1U, options.workers);
  asio::thread_pool blocking_pool(workers);
  // The workers' context: S3 connections kept for reuse belong to it, so it outlives the stores.
  asio::io_context io;
  std::unique_ptr<MetadataStore> metadata;
  std::unique_ptr<BlobStores> stores;
  try {
    metadata = open_metadata_store(config.database, MetadataOpening::inspect);  // it only reads
    stores = std::make_unique<BlobStores>(config, blocking_pool, StoreOpening::inspect);
  } catch (const std::exception& e) {
    spdlog::error("cannot verify: {}", e.what());
    return kExitDamaged;
  }

  // A first walk over the rows, for the progress bar's totals: cheap next to reading blobs.
  std::int64_t total_blobs = 0;
  std::int64_t total_bytes = 0;
  try {
    BlobCursor counting(*metadata, options.store);
    while (auto row = counting.next()) {
      ++total_blobs;
      total_bytes += static_cast<std::int64_t>(row->blob.size);
    }
  } catch (const std::exception& e) {
    spdlog::error("cannot verify: {}", e.what());
    return kExitDamaged;
  }

  Tally tally;
  BlobCursor cursor(*metadata, options.store);
  Progress progress(std::cerr, "verify", total_blobs, total_bytes, options.progress,
                    options.progress_interval, "blobs");
  Verifier verifier(*stores, cursor, progress, tally);
  for (unsigned i = 0; i < workers; ++i) asio::co_spawn(io, verifier.run_worker(), asio::detached);
  io.run();
  progress.finish();
  stores->stop();
  print_report(out, tally);
  if (verifier.listing_failed())
    out << "the metadata store could not be read to the end (see the log)\n";
  const bool intact =
      tally.bad == 0 && tally.missing == 0 && tally.failed == 0 && !verifier.listing_failed();
  return intact ? 0 : kExitDamaged;
}

}  // namespace mxcd
