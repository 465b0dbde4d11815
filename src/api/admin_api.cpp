#include "api/admin_api.hpp"

#include "core/identifiers.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace mxcd::api {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;

AdminApi::AdminApi(const Config& config, auth::Authenticator& authenticator, MediaRecords& records,
                   BlobCollector& collector)
    : config_(config), authenticator_(authenticator), records_(records), collector_(collector) {}

void AdminApi::add_routes(http::Router& router) {
  constexpr std::string_view kMedia = "/_synapse/admin/v1/media/{serverName}/{mediaId}";
  router.add({beast_http::verb::delete_}, kMedia,
             [this](http::Request& r) { return delete_media(r); });
  // Synapse serves other methods on this path (GET: the media's details; POST
  // media/{serverName}/delete) that mxcd does not serve yet. They are unknown endpoints,
  // 404 M_UNRECOGNIZED like every other path under the prefix: a 405 would say the path is
  // served here.
  router.add({beast_http::verb::get, beast_http::verb::head, beast_http::verb::post,
              beast_http::verb::put, beast_http::verb::patch},
             kMedia, [](http::Request&) -> asio::awaitable<http::Response> {
               co_return http::error_response(MatrixError::unrecognized());
             });
}

asio::awaitable<Result<auth::Requester>> AdminApi::admin(http::Request& request) {
  auto requester = co_await authenticator_.authenticate(request);
  if (!requester) co_return requester;
  const auto& admins = config_.auth.admin_users;
  if (std::find(admins.begin(), admins.end(), requester->user_id) == admins.end()) {
    co_return MatrixError::forbidden("You are not a server admin");
  }
  co_return requester;
}

asio::awaitable<http::Response> AdminApi::delete_media(http::Request& request) {
  auto requester = co_await admin(request);
  if (!requester) co_return http::error_response(requester.error());
  MediaKey key{request.params.at(0), request.params.at(1)};
  if (!is_valid_server_name(key.server_name) || !is_valid_media_id(key.media_id)) {
    co_return http::error_response(MatrixError::invalid_param("Invalid media ID"));
  }
  if (key.server_name != config_.server_name) {
    co_return http::error_response(MatrixError::bad_request("Can only delete local media"));
  }
  auto removed = co_await records_.remove(key);
  if (!removed) co_return http::error_response(removed.error());
  if (!*removed) co_return http::error_response(MatrixError::not_found("Unknown media"));
  spdlog::info("deleted {} at the request of {}", mxc_uri(key.server_name, key.media_id),
               requester->user_id);
  collector_.wake();
  boost::json::object body;
  body["deleted_media"] = boost::json::array{boost::json::string(key.media_id)};
  body["total"] = 1;
  co_return http::json_response(beast_http::status::ok, body);
}

}  // namespace mxcd::api
