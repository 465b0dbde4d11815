// Where a blob's bytes go as a store or a fill source reads them (blob/blob_store.hpp,
// blob/cache/blob_source.hpp): in order, each byte once, while they arrive.
#pragma once

#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <string>

namespace mxcd {

// What a response says of the bytes that follow it. A source that names blobs by something
// other than their bytes (a remote homeserver's media ID) learns the type and the file name
// only from its answer; a bucket says nothing the request did not already know.
struct BlobHeaders {
  std::string content_type;  // empty: not said
  std::string filename;      // empty: not said
};

class BlobSink {
 public:
  virtual ~BlobSink() = default;
  // Called at most once, before the first byte, by a source whose answer carries headers.
  // An error stops the read.
  virtual Status headers(const BlobHeaders& /*headers*/) { return {}; }
  // An error stops the read; the reader returns it.
  virtual boost::asio::awaitable<Status> data(const char* bytes, std::size_t size) = 0;
};

}  // namespace mxcd
