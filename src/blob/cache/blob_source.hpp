// Where the fill tier (blob/cache/blob_filler.hpp) gets the bytes of blobs this machine does
// not hold: an S3 bucket (blob/s3/s3_blob_source.hpp), or a remote homeserver. The interface
// is only what a store built on the fill tier asks of the place its blobs live; a source
// that cannot take writes (a remote homeserver) refuses put() and remove().
#pragma once

#include "blob/blob_sink.hpp"
#include "blob/blob_store.hpp"
#include "core/byte_span.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace mxcd {

// What the source holds for a blob, as a HEAD request tells it.
struct SourceObject {
  std::uint64_t size = 0;
};

class BlobSource {
 public:
  virtual ~BlobSource() = default;

  // The source, for messages: "bucket b at https://s3.example.com".
  virtual std::string describe() const = 0;
  // Where the source keeps the blob, for messages: a bucket's object key.
  virtual std::string location(const BlobId& blob) const = 0;

  // Streams the blob's bytes (or only the range) into sink as they arrive. Whatever the
  // source's answer says of them reaches sink.headers() before the first byte. The source
  // checks nothing: the fill compares what arrived with what it asked for. 404 M_NOT_FOUND
  // when the source holds no such blob.
  virtual boost::asio::awaitable<Status> get(const BlobId& blob, std::optional<ByteSpan> range,
                                             BlobSink& sink) = 0;
  // nullopt when the source holds no such blob.
  virtual boost::asio::awaitable<Result<std::optional<SourceObject>>> head(const BlobId& blob) = 0;
  // Makes sure the source holds the blob, whose bytes are the first blob.size bytes of the
  // file fd; content_type labels them. Holding them already is not an error.
  virtual boost::asio::awaitable<Status> put(int fd, const BlobId& blob,
                                             const std::string& content_type) = 0;
  // Succeeds when the blob is gone, including when the source never held it.
  virtual boost::asio::awaitable<Status> remove(const BlobId& blob) = 0;
};

}  // namespace mxcd
