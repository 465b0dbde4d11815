// Endpoints for operators and their monitoring: /_mxcd/health and /_mxcd/version.
#pragma once

#include "blob/blob_stores.hpp"
#include "core/config.hpp"
#include "http/router.hpp"
#include "media/media_records.hpp"

namespace mxcd::api {

class OperatorApi {
 public:
  // Health waits config.database.health_timeout for the database and compares the free space
  // of config.storage.path with its free_space_reserve.
  OperatorApi(MediaRecords& records, BlobStores& stores, const Config& config);
  void add_routes(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> health(http::Request& request);

  MediaRecords& records_;
  BlobStores& stores_;
  const Config& config_;
};

}  // namespace mxcd::api
