// Deletes blobs whose last record is gone, in the background. Each round claims a batch in
// the metadata store (which refuses blobs that an upload holds a lease on; see
// MetadataStore), removes each blob's bytes from the store that holds it and from its local
// copies, then forgets the blob. A removal that fails is handed back and retried in a later
// round. Rounds run right after a record is removed and every interval, which also finishes
// deletions that a crashed process left claimed.
#pragma once

#include "blob/blob_stores.hpp"
#include "meta/metadata_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <memory>

namespace mxcd {

class BlobCollector {
 public:
  BlobCollector(MetadataStore& metadata, BlobStores& stores,
                boost::asio::thread_pool& blocking_pool);

  void start(boost::asio::io_context& io, std::chrono::milliseconds interval);
  // Asks for a round now (a record was removed).
  void wake();
  void stop();

 private:
  boost::asio::awaitable<void> run(std::chrono::milliseconds interval);
  // Deletes what can be claimed; returns false when a removal failed (retry next round).
  boost::asio::awaitable<bool> delete_batch(const std::vector<MetadataStore::DoomedBlob>& batch);

  MetadataStore& metadata_;
  BlobStores& stores_;
  boost::asio::thread_pool& blocking_pool_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::atomic<bool> woken_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace mxcd
