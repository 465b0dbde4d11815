#include "api/operator_api.hpp"

#include "core/version.hpp"

#include <boost/json/object.hpp>

namespace mxcd::api {

namespace beast_http = boost::beast::http;

OperatorApi::OperatorApi(MediaRecords& records, BlobStores& stores,
                         std::chrono::milliseconds health_timeout)
    : records_(records), stores_(stores), health_timeout_(health_timeout) {}

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
  Status status = co_await records_.ping(health_timeout_);
  for (BlobStore* store : stores_.all()) {
    if (status) status = store->check_writable();
  }
  boost::json::object body;
  if (status) {
    body["status"] = "ok";
    co_return http::json_response(beast_http::status::ok, body);
  }
  body["status"] = "unavailable";
  body["error"] = status.error().message;
  co_return http::json_response(beast_http::status::service_unavailable, body);
}

}  // namespace mxcd::api
