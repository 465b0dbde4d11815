// Endpoints for operators and their monitoring: /_mxcd/health and /_mxcd/version.
#pragma once

#include "blob/blob_stores.hpp"
#include "http/router.hpp"
#include "media/media_records.hpp"

namespace mxcd::api {

class OperatorApi {
 public:
  // health_timeout: how long the health check waits for the database.
  OperatorApi(MediaRecords& records, BlobStores& stores, std::chrono::milliseconds health_timeout);
  void add_routes(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> health(http::Request& request);

  MediaRecords& records_;
  BlobStores& stores_;
  const std::chrono::milliseconds health_timeout_;
};

}  // namespace mxcd::api
