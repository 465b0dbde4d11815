// Endpoints for operators and their monitoring: /_mxcd/health and /_mxcd/version.
#pragma once

#include "blob/blob_stores.hpp"
#include "http/router.hpp"
#include "media/media_records.hpp"

namespace mxcd::api {

class OperatorApi {
 public:
  OperatorApi(MediaRecords& records, BlobStores& stores);
  void add_routes(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> health(http::Request& request);

  MediaRecords& records_;
  BlobStores& stores_;
};

}  // namespace mxcd::api
