#include "api/operator_api.hpp"

#include "blob/free_space.hpp"
#include "core/version.hpp"

#include <boost/json/object.hpp>

namespace mxcd::api {

namespace beast_http = boost::beast::http;

OperatorApi::OperatorApi(MediaRecords& records, BlobStores& stores, const Config& config)
    : records_(records), stores_(stores), config_(config) {}

void OperatorApi::add_routes(http::Router& router) {
  router.add({beast_http::verb::get}, "/_mxcd/health",
             [this](http::Request& r) { return health(r); });
  router.add({beast_http::verb::get}, "/_mxcd/version",
             [](http::Request&) -> boost::asio::awaitable<http::Response> {
               boost::json::object body;
               body["server"] = "mxcd";
               body["version"] = kVersion;
               co_return http::json_response(beast_http::status::ok, body);
             });
}

boost::asio::awaitable<http::Response> OperatorApi::health(http::Request&) {
  // A database that does not answer must not hold the answer: load balancers give up on
  // a slow check and would see a timeout rather than the 503 that takes the instance out.
  Status status = co_await records_.ping(config_.database.health_timeout);
  for (BlobStore* store : stores_.all()) {
    if (status) status = store->check_writable();
  }
  boost::json::object body;
  if (status) {
    // A full disk still serves downloads, so it stays in the load balancer: 200, "degraded".
    const std::uint64_t reserve = config_.storage.free_space_reserve;
    auto space = disk_space(config_.storage.path);
    if (space && !body_fits(0, space->available, reserve)) {
      body["status"] = "degraded";
      body["error"] = short_of_space_reason(space->available, reserve);
    } else {
      body["status"] = "ok";
    }
    co_return http::json_response(beast_http::status::ok, body);
  }
  body["status"] = "unavailable";
  body["error"] = status.error().message;
  co_return http::json_response(beast_http::status::service_unavailable, body);
}

}  // namespace mxcd::api
