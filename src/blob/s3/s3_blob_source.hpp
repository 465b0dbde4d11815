// An S3-compatible bucket as the source of a fill tier (blob/cache/blob_source.hpp): a blob
// is the object at its content-addressed key, [<prefix>/]<aa>/<bb>/<name>
// (blob/blob_names.hpp), or, adopted in place, the object at its location.
#pragma once

#include "blob/cache/blob_source.hpp"
#include "s3/s3_client.hpp"

#include <string>

namespace mxcd {

class S3BlobSource final : public BlobSource {
 public:
  // client outlives the source.
  S3BlobSource(s3::Client& client, std::string prefix)
      : client_(client), prefix_(std::move(prefix)) {}

  std::string describe() const override { return client_.describe(); }
  // The object key: the blob's location when it has one.
  std::string location(const BlobId& blob) const override;

  boost::asio::awaitable<Status> get(const BlobId& blob, std::optional<ByteSpan> range,
                                     BlobSink& sink) override;
  boost::asio::awaitable<Result<std::optional<SourceObject>>> head(const BlobId& blob) override;
  // HEAD, and PUT from the file when the bucket has no object of the blob's size there.
  boost::asio::awaitable<Status> put(int fd, const BlobId& blob,
                                     const std::string& content_type) override;
  boost::asio::awaitable<Status> remove(const BlobId& blob) override;

 private:
  s3::Client& client_;
  const std::string prefix_;
};

}  // namespace mxcd
