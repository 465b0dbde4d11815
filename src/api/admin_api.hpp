// The admin API, at the paths of Synapse's admin API so that existing admin tools work once
// the reverse proxy sends /_synapse/admin/v1/media/ to mxcd. Callers must be listed in
// auth.admin_users.
//   DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}: removes a local media record;
//   its bytes go once no other record shares them (see BlobCollector).
#pragma once

#include "auth/authenticator.hpp"
#include "http/router.hpp"
#include "media/blob_collector.hpp"
#include "media/media_records.hpp"

namespace mxcd::api {

class AdminApi {
 public:
  AdminApi(const Config& config, auth::Authenticator& authenticator, MediaRecords& records,
           BlobCollector& collector);
  void add_routes(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> delete_media(http::Request& request);
  // The admin making the request, or the error to answer with.
  boost::asio::awaitable<Result<auth::Requester>> admin(http::Request& request);

  const Config& config_;
  auth::Authenticator& authenticator_;
  MediaRecords& records_;
  BlobCollector& collector_;
};

}  // namespace mxcd::api
