// The scrubber: in the background, at a bounded rate, re-hashes this machine's copy of every
// stored blob (a local store's file, an S3 store's cached copy) and takes a copy whose bytes
// no longer match its name out of service (BlobStore::set_aside_damaged_copy): a cached copy
// is dropped and fetched again from the bucket, a local file is set aside until an upload of
// the same bytes replaces it. Downloads never hash: this is how damage on disk is found
// without slowing them. A pass walks the metadata store's blobs in name order; the next pass
// starts `interval` after one ends. `mxcd verify` checks the stores themselves, on demand.
#pragma once

#include "blob/blob_stores.hpp"
#include "core/config.hpp"
#include "meta/metadata_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace mxcd {

// Keeps reading at most bytes_per_second on average. A reader that fell behind (it waited
// on the database, or on blobs without a local copy) may catch up by one second's worth of
// bytes at once, never more.
class ScrubPace {
 public:
  using Clock = std::chrono::steady_clock;
  ScrubPace(std::uint64_t bytes_per_second, Clock::time_point start);
  // Counts `bytes` just read at `now`; returns how long to wait before reading more.
  Clock::duration wait_after(std::uint64_t bytes, Clock::time_point now);

 private:
  double bytes_per_second_;
  Clock::time_point paid_until_;  // when the bytes counted so far are paid for at the rate
};

class Scrubber {
 public:
  Scrubber(const Config::Scrub& config, MetadataStore& metadata, BlobStores& stores,
           boost::asio::thread_pool& blocking_pool);

  // Starts the first pass now, on io.
  void start(boost::asio::io_context& io);
  void stop();

 private:
  struct Pass;
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> scrub_all(Pass& pass);
  boost::asio::awaitable<void> scrub(const BlobId& blob, BlobStore& store, Pass& pass);
  boost::asio::awaitable<void> pause(std::chrono::steady_clock::duration duration);

  const Config::Scrub& config_;
  MetadataStore& metadata_;
  BlobStores& stores_;
  boost::asio::thread_pool& blocking_pool_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::atomic<bool> stopping_{false};
};

}  // namespace mxcd
