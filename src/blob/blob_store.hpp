// The blob seam. A blob is an immutable byte string named by the SHA-256 of its bytes.
// Stores (local filesystem now; S3 and a local cache tier in front of it next) take bytes
// through a BlobWriter, which hashes as it goes and makes the blob durable on commit, and
// hand blobs back as open files ready for sendfile(2).
#pragma once

#include "core/result.hpp"
#include "core/unique_fd.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
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
  // Makes the blob durable and returns its identity. Writing bytes the store already holds
  // is not an error: the store keeps one copy.
  virtual boost::asio::awaitable<Result<BlobId>> commit() = 0;
};

struct OpenBlob {
  UniqueFd fd;
  std::uint64_t size = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Recorded with every blob, so that media stays readable when new writes go elsewhere.
  virtual std::string_view name() const = 0;
  virtual Result<std::unique_ptr<BlobWriter>> begin_write() = 0;
  // 404 M_NOT_FOUND when the store does not hold the blob.
  virtual boost::asio::awaitable<Result<OpenBlob>> open(const BlobId& blob) = 0;
  // Whether the store can take writes (for the health check).
  virtual Status check_writable() = 0;
};

}  // namespace mxcd
