// An S3 client for one bucket: the object operations mxcd needs, streamed in and out with
// bounded memory, over a keep-alive connection pool, signed with SigV4.
//
// Every request has a connect deadline and a read deadline (reset whenever bytes move).
// Requests that are safe to repeat are retried with exponential backoff and full jitter on
// network errors, 5xx, 429 and SlowDown; a GetObject that breaks off mid-body resumes with a
// Range from the first missing byte. Errors come back as 502/503 MatrixErrors; the operator
// gets the S3 error explained in the log (s3_error.hpp).
// No x-amz-checksum-* header is ever sent: several S3-compatible servers refuse them.
#pragma once

#include "core/byte_span.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "s3/s3_error.hpp"
#include "s3/sigv4.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mxcd::s3 {

// Bytes [offset, offset + length) of an open file: a request body read straight from disk.
struct FileRegion {
  int fd = -1;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

struct ObjectInfo {
  std::uint64_t size = 0;
  std::string etag;
  std::string content_type;
};

// Receives a GetObject body piece by piece, in order, each byte once (even across resumed
// attempts). An error from data() stops the download.
class ObjectSink {
 public:
  virtual ~ObjectSink() = default;
  virtual boost::asio::awaitable<Status> data(const char* bytes, std::size_t size) = 0;
};

struct ListedObject {
  std::string key;
  std::uint64_t size = 0;
};

struct ListPage {
  std::vector<ListedObject> objects;
  std::string next_continuation_token;  // empty on the last page
};

struct MultipartUpload {
  std::string key;
  std::string upload_id;
  std::chrono::system_clock::time_point initiated;  // the epoch when the server did not say
};

// Response header overrides a presigned GET asks the server to apply.
struct ResponseOverrides {
  std::string content_type;
  std::string content_disposition;
};

class Client {
 public:
  // blocking_pool hashes request bodies for signing. Throws std::runtime_error when the CA
  // file cannot be loaded or the SSE-C key is not 32 bytes of base64.
  Client(const S3StoreConfig& config, boost::asio::thread_pool& blocking_pool);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Absent when there is no such object.
  boost::asio::awaitable<Result<std::optional<ObjectInfo>>> head_object(const std::string& key);

  // Stores the region as one object (PutObject) or, above the multipart threshold, in parts
  // uploaded in parallel; a failed multipart upload is aborted. body_sha256 is the hex digest
  // of the region (used for signing unless unsigned payloads are configured).
  boost::asio::awaitable<Status> put_file(const std::string& key, FileRegion body,
                                          const std::string& body_sha256,
                                          const std::string& content_type);

  // Streams the object (or a range of it) into sink. NoSuchKey is a 404 M_NOT_FOUND.
  boost::asio::awaitable<Status> get_object(const std::string& key, std::optional<ByteSpan> range,
                                            ObjectSink& sink);

  // Succeeds when the object is gone, including when it never existed.
  boost::asio::awaitable<Status> delete_object(const std::string& key);
  // Deletes up to 1000 keys in one request; returns the keys the server could not delete.
  boost::asio::awaitable<Result<std::vector<std::string>>> delete_objects(
      const std::vector<std::string>& keys);

  boost::asio::awaitable<Result<ListPage>> list_objects(const std::string& prefix,
                                                        const std::string& continuation_token,
                                                        unsigned max_keys = 1000);

  // The multipart steps, public for put_file's callers that need them one by one (tests,
  // the bucket check).
  boost::asio::awaitable<Result<std::string>> create_multipart_upload(
      const std::string& key, const std::string& content_type);
  // Returns the part's ETag.
  boost::asio::awaitable<Result<std::string>> upload_part(const std::string& key,
                                                          const std::string& upload_id,
                                                          unsigned part_number, FileRegion body);
  boost::asio::awaitable<Status> complete_multipart_upload(const std::string& key,
                                                           const std::string& upload_id,
                                                           const std::vector<std::string>& etags);
  boost::asio::awaitable<Status> abort_multipart_upload(const std::string& key,
                                                        const std::string& upload_id);
  // Every multipart upload in progress under the prefix (all pages).
  boost::asio::awaitable<Result<std::vector<MultipartUpload>>> list_multipart_uploads(
      const std::string& prefix);

  // A URL that lets anyone GET the object until it expires.
  std::string presigned_get_url(const std::string& key, Duration ttl,
                                const ResponseOverrides& overrides) const;

  // Lists one key under the prefix, once, without retrying: proves that the endpoint, the
  // credentials, the region and the bucket are right.
  struct AccessCheck {
    bool reachable = false;  // false: no answer at all (the server may just be down)
    std::string problem;     // empty when all is well; else what to change, in words
  };
  boost::asio::awaitable<AccessCheck> check_access();

  // One request, sent once (no retry) on a connection of its own, and the server's answer as
  // it came, errors included: the bucket check (tools/s3_check.hpp) tells set-up mistakes
  // apart by the exact error, and must be quick when the server is down.
  struct Probe {
    std::string operation;  // for messages, e.g. "PutObject"
    std::string method = "GET";
    std::string key;  // empty: a request on the bucket
    NameValues query;
    std::string body;  // its SHA-256 is signed, or UNSIGNED-PAYLOAD, as payload_signing says
    std::string content_type;
    // The headers the client adds to such a request: the encryption headers and storage class
    // when it creates an object, the SSE-C key when it reads or writes an object's bytes.
    enum class ObjectHeaders { none, creating, using_bytes } object_headers = ObjectHeaders::none;
    bool anonymous = false;  // not signed, as anyone on the internet could send it
  };
  struct ProbeAnswer {
    bool answered = false;
    std::string network_problem;  // why there was no answer
    unsigned status = 0;
    std::string body;
    std::string date;           // the Date header
    std::string bucket_region;  // the x-amz-bucket-region header
    std::string version_id;     // the x-amz-version-id header
    std::string etag;
    std::chrono::system_clock::time_point received;  // this machine's clock at the answer
    std::optional<S3Error> error;                    // when the status is not 2xx
    std::string explanation;  // the error in an operator's words (s3_error.hpp)
  };
  boost::asio::awaitable<ProbeAnswer> probe(const Probe& request);

  // For messages: "bucket NAME at ENDPOINT".
  std::string describe() const;
  const S3StoreConfig& config() const { return config_; }

  struct Impl;

 private:
  const S3StoreConfig& config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mxcd::s3
