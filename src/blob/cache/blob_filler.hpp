// The fill tier: serves blobs from a bounded local cache (blob/cache/blob_cache.hpp) and,
// on a miss, fetches them from a source (blob/cache/blob_source.hpp) while clients already
// read them.
//
// A miss starts one fetch per blob, which concurrent requests share: the bytes go into a file
// in the cache's tmp/ that readers see grow (core/growing_file.hpp), and once all arrived,
// were checked, and were fsynced, the file is published into the cache. A range that does
// not start at 0 is fetched alone into an anonymous file and not cached, so seeking in a
// large video costs only the bytes asked for (unless a whole fetch of the blob already got
// that far: then the range is served from it). Bytes that do not pass the request's check
// are never completed to a client: the last byte is held back until the check is done, and
// nothing is published.
#pragma once

#include "blob/blob_store.hpp"
#include "blob/cache/blob_cache.hpp"
#include "blob/cache/blob_source.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace mxcd {

// What a whole fetch checks before its last byte reaches a reader. Every fetch checks that
// the source sent exactly blob.size bytes.
enum class FillCheck {
  sha256_of_name,  // the bytes hash to the blob's name
  size_only,       // nothing more: the name says nothing of the bytes (an unhashed blob)
  compute_sha256,  // nothing more, but the bytes' hash is reported to FillRequest::hashed
};

struct FillRequest {
  // Its name is what the cache keeps the copy under and what concurrent requests share a
  // fetch by; its size is what the source must send. The source is asked for this blob.
  BlobId blob;
  FillCheck check = FillCheck::sha256_of_name;
  // compute_sha256: called once with the bytes' SHA-256 when a whole fetch started by this
  // request arrived complete, before its copy is published. It may run after open() returned.
  std::function<void(const std::string& sha256)> hashed = {};
};

// An opened blob and what the source's answer said of it (nothing on a cache hit).
struct FilledBlob {
  OpenBlob blob;
  BlobHeaders headers;
};

class BlobFiller {
 public:
  // cache and source outlive the filler; fetches under way when it is destroyed must have
  // ended (stop() makes them end at their next piece).
  BlobFiller(BlobCache& cache, BlobSource& source, boost::asio::thread_pool& blocking_pool);
  ~BlobFiller();

  // The cached copy, or the file a fetch fills: the whole blob, or the range when one is
  // given that does not start at 0. Returns once the first bytes arrived, so that a missing
  // blob or an unreachable source is an error here and not a broken response later: the
  // source's error, or 503 when it gave none. The fetch runs on the caller's executor.
  boost::asio::awaitable<Result<FilledBlob>> open(const FillRequest& request,
                                                  std::optional<ByteSpan> range);
  // Drops the cached copy of the blob. A fetch of it under way is still served to its
  // readers but never published, so that deleted bytes do not come back into the cache.
  void remove(const std::string& name);
  // Makes fetches under way fail at their next piece (503), so that the server can stop.
  void stop() { stopping_ = true; }

 private:
  struct Fetch;
  boost::asio::awaitable<void> run_fetch(std::shared_ptr<Fetch> fetch);

  BlobCache& cache_;
  BlobSource& source_;
  boost::asio::thread_pool& blocking_pool_;
  std::atomic<bool> stopping_{false};

  std::mutex fetches_mutex_;
  std::unordered_map<std::string, std::shared_ptr<Fetch>> fetches_;  // whole-blob fills
};

}  // namespace mxcd
