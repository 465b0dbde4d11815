// The blob seam. A blob is an immutable byte string named by the SHA-256 of its bytes (or,
// until its bytes are hashed, by an unhashed id: see blob/blob_names.hpp). Stores (a local
// filesystem; an S3 bucket behind a local cache) take bytes through a
// BlobWriter, which hashes as it goes and makes the blob durable on commit, and hand blobs
// back as open files ready for sendfile(2), possibly still being filled from the bucket.
#pragma once

#include "blob/blob_digest.hpp"
#include "blob/blob_names.hpp"
#include "blob/blob_sink.hpp"
#include "core/byte_span.hpp"
#include "core/growing_file.hpp"
#include "core/result.hpp"
#include "core/unique_fd.hpp"

#include <boost/asio/awaitable.hpp>

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mxcd {

struct BlobId {
  // The blob's name: the lower-case hex SHA-256 of its bytes, or an unhashed id
  // (blob/blob_names.hpp) for an object whose bytes were not hashed yet.
  std::string name;
  std::uint64_t size = 0;
  // The key of the blob's object in its store when that is not the content-addressed key of
  // its name: an object adopted in place (say synapse-s3-storage-provider's
  // "synapse/local_content/ab/cd/efgh..."), whose bytes are served and deleted where they
  // are instead of being copied. Empty: the store's content-addressed key. Only S3 stores
  // keep blobs at a location; every other store refuses such a blob.
  std::string location = {};
};

inline bool is_unhashed(const BlobId& blob) { return is_unhashed(blob.name); }

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

// A blob's copy on this machine's disk, open for reading.
struct LocalCopy {
  UniqueFd fd;
  std::filesystem::path path;

  // Whether path still names the file that fd has open (not one an upload or a fill put in
  // its place since): only then may the copy be taken out of service.
  bool still_in_place() const {
    struct stat opened {};
    struct stat current {};
    return ::fstat(fd.get(), &opened) == 0 && ::stat(path.c_str(), &current) == 0 &&
           opened.st_ino == current.st_ino && opened.st_dev == current.st_dev;
  }
};

// How a process opens a store. The server recovers it: removes the temporary files a crash
// left, evicts a cache down to its size, drops queued uploads whose bytes are gone. A command
// that only reads (mxcd verify) may run beside a server and leaves all of that alone.
enum class StoreOpening { recover, inspect };

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
  // 404 M_NOT_FOUND when the store does not hold the blob; 500 for a blob with a location
  // in a store that keeps none.
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

  // --- Checking stored bytes (the scrubber, mxcd verify, mxcd import synapse --verify) ---
  // Reads the blob back from where the store keeps it and hashes it: a bucket's object, not
  // a cached copy (unless that copy is all there is yet). 404 M_NOT_FOUND when the store
  // holds no such blob. Never called on the download path.
  virtual boost::asio::awaitable<Result<BlobDigest>> digest(const BlobId& blob) = 0;
  // Where the store keeps the blob, for messages: a file's path, a bucket's key.
  virtual std::string describe_location(const BlobId& blob) const = 0;
  // This machine's copy of the blob, for the scrubber to re-hash: a local store's file, a
  // bucket's cached copy; nullopt when there is none here. Opening it is no use of the blob
  // (a cached copy keeps its place in the eviction order).
  virtual std::optional<LocalCopy> open_local_copy(const BlobId& /*blob*/) { return std::nullopt; }
  // The copy open_local_copy gave does not hash to the blob's name: takes it out of service
  // (unless it was replaced meanwhile), so that it is no longer served, and logs what it did.
  virtual boost::asio::awaitable<void> set_aside_damaged_copy(const BlobId& /*blob*/,
                                                              const LocalCopy& /*copy*/) {
    co_return;
  }

  // --- Adopting objects in place (mxcd import synapse) ---
  // Only stores that keep blobs at locations (S3) can; every other store answers 500.
  // The object at `location`, which this store did not write, as a blob kept there: its
  // size, and its unhashed name (blob/blob_names.hpp) until its bytes are hashed. nullopt
  // when there is no object there.
  virtual boost::asio::awaitable<Result<std::optional<BlobId>>> find_adoptable(
      const std::string& /*location*/) {
    co_return MatrixError::internal("The store keeps no objects at locations");
  }
  // Streams the blob's bytes into sink from where the store keeps them (a bucket's object,
  // never a cached copy), as they arrive. 404 M_NOT_FOUND when the store holds no such blob.
  virtual boost::asio::awaitable<Status> read(const BlobId& /*blob*/, BlobSink& /*sink*/) {
    co_return MatrixError::internal("The store keeps no objects at locations");
  }

  // Whether the store can take writes (for the health check).
  virtual Status check_writable() = 0;
  // The local disk is short of space: drops copies it can fetch again (an S3 store's cached
  // copies, least recently used first, never a queued upload) until about `bytes` are freed.
  // Returns how many bytes it freed; a store whose files are all it has frees none.
  virtual std::uint64_t release_space(std::uint64_t /*bytes*/) { return 0; }
  // Ends background work (fills, queued uploads) so that the server can stop.
  virtual void stop() {}
};

}  // namespace mxcd
