// Endpoints for operators and their monitoring: /_mxcd/health and /_mxcd/version.
#pragma once

#include "blob/blob_store.hpp"
#include "http/router.hpp"
#include "media/media_records.hpp"

namespace mxcd::api {

class OperatorApi {
 public:
  OperatorApi(MediaRecords& records, BlobStore& blobs);
  void add_routes(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> health(http::Request& request);

  MediaRecords& records_;
  BlobStore& blobs_;
};

}  // namespace mxcd::api
