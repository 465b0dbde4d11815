// The blob seam. A blob is an immutable byte string named by the SHA-256 of its bytes.
// Stores (a local filesystem; an S3 bucket behind a local cache) take bytes through a
// BlobWriter, which hashes as it goes and makes the blob durable on commit, and hand blobs
// back as open files ready for sendfile(2), possibly still being filled from the bucket.
#pragma once

#include "core/byte_span.hpp"
#include "core/growing_file.hpp"
#include "core/result.hpp"
#include "core/unique_fd.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mxcd {

struct BlobId {
  std::string sha256;  // lower-case hex
  std::uint64_t size = 0;
};

class BlobWriter {
 public:
  // A writer destroyed before commit() leaves nothing behind.
  virtual ~BlobWriter() = default;
  virtual Status append(const void* data, std::size_t size) = 0;
  virtual std::uint64_t size() const = 0;
  // Ends the bytes and returns the blob's identity; nothing is stored yet. Between finish()
  // and commit() the caller leases the blob, so that it cannot be deleted meanwhile.
  virtual BlobId finish() = 0;
  // Makes the blob durable. Writing bytes the store already holds is not an error: the
  // store keeps one copy.
  virtual boost::asio::awaitable<Status> commit() = 0;
};

// Bytes of a blob in an open file. The file holds the blob from byte `start` on (0 unless
// only a range was fetched), and may still be growing.
struct OpenBlob {
  UniqueFd fd;
  std::uint64_t size = 0;   // the blob's size
  std::uint64_t start = 0;  // the blob offset of the file's first byte
  std::shared_ptr<GrowingFile> growing;
};

// Response headers a redirect target should send instead of its own.
struct RedirectHeaders {
  std::string content_type;
  std::string content_disposition;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Recorded with every blob, so that media stays readable when new writes go elsewhere.
  virtual std::string_view name() const = 0;
  // content_type: what object storage should label the bytes with.
  virtual Result<std::unique_ptr<BlobWriter>> begin_write(const std::string& content_type) = 0;
  // Opens the blob, or just the range when one is given and fetching only it is cheaper.
  // 404 M_NOT_FOUND when the store does not hold the blob.
  virtual boost::asio::awaitable<Result<OpenBlob>> open(const BlobId& blob,
                                                        std::optional<ByteSpan> range) = 0;
  // Where a client may fetch the blob itself, when the store is configured to redirect.
  virtual std::optional<std::string> redirect_url(const BlobId& /*blob*/,
                                                  const RedirectHeaders& /*headers*/) const {
    return std::nullopt;
  }
  // Removes the blob's bytes, from the store and every local copy. Removing a blob the store
  // does not hold is not an error. Only called for a blob that no record refers to and no
  // upload holds a lease on.
  virtual boost::asio::awaitable<Status> remove(const BlobId& blob) = 0;
  // Whether the store can take writes (for the health check).
  virtual Status check_writable() = 0;
  // Ends background work (fills, queued uploads) so that the server can stop.
  virtual void stop() {}
};

}  // namespace mxcd
