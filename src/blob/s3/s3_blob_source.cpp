#include "blob/s3/s3_blob_source.hpp"

namespace mxcd {

namespace asio = boost::asio;

namespace {

// Hands a GetObject body on to a blob sink.
class ForwardingSink final : public s3::ObjectSink {
 public:
  explicit ForwardingSink(BlobSink& sink) : sink_(sink) {}
  asio::awaitable<Status> data(const char* bytes, std::size_t size) override {
    co_return co_await sink_.data(bytes, size);
  }

 private:
  BlobSink& sink_;
};

}  // namespace

std::string S3BlobSource::location(const BlobId& blob) const {
  if (!blob.location.empty()) return blob.location;
  return object_key(prefix_, blob.name);
}

asio::awaitable<Status> S3BlobSource::get(const BlobId& blob, std::optional<ByteSpan> range,
                                          BlobSink& sink) {
  const std::string key = location(blob);
  ForwardingSink forwarding(sink);
  co_return co_await client_.get_object(key, range, forwarding);
}

asio::awaitable<Result<std::optional<SourceObject>>> S3BlobSource::head(const BlobId& blob) {
  auto object = co_await client_.head_object(location(blob));
  if (!object) co_return object.error();
  if (!*object) co_return std::optional<SourceObject>();
  co_return std::optional<SourceObject>(SourceObject{(*object)->size});
}

asio::awaitable<Status> S3BlobSource::put(int fd, const BlobId& blob,
                                          const std::string& content_type) {
  const std::string key = location(blob);
  auto existing = co_await client_.head_object(key);
  if (!existing) co_return existing.error();
  if (*existing && (*existing)->size == blob.size) co_return Status();  // content-addressed
  const s3::FileRegion body{fd, 0, blob.size};  // named: GCC 12 and braced temporaries in co_await
  co_return co_await client_.put_file(key, body, blob.name, content_type);
}

asio::awaitable<Status> S3BlobSource::remove(const BlobId& blob) {
  co_return co_await client_.delete_object(location(blob));
}

}  // namespace mxcd
