// The Matrix client media endpoints: authentication, path and query parameters, and the
// mapping of pipeline results to HTTP. The work itself happens in media/.
#pragma once

#include "auth/authenticator.hpp"
#include "http/router.hpp"
#include "media/download.hpp"
#include "media/thumbnail.hpp"
#include "media/upload.hpp"

namespace mxcd::api {

class ClientMediaApi {
 public:
  ClientMediaApi(const Config& config, auth::Authenticator& authenticator, UploadPipeline& uploads,
                 DownloadPipeline& downloads, ThumbnailPipeline& thumbnails);

  void add_routes(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> upload(http::Request& request);
  boost::asio::awaitable<http::Response> create(http::Request& request);
  boost::asio::awaitable<http::Response> fill(http::Request& request);
  boost::asio::awaitable<http::Response> download(http::Request& request, bool legacy_path);
  boost::asio::awaitable<http::Response> thumbnail(http::Request& request, bool legacy_path);
  boost::asio::awaitable<http::Response> config(http::Request& request);

  // Whether the request may read media: any token on the authenticated paths (guests too),
  // none on the legacy ones.
  boost::asio::awaitable<Status> reader(http::Request& request, bool legacy_path);
  // A signed-in, non-guest user, or the error to answer with.
  boost::asio::awaitable<Result<auth::Requester>> member(http::Request& request);

  const Config& config_;
  auth::Authenticator& authenticator_;
  UploadPipeline& uploads_;
  DownloadPipeline& downloads_;
  ThumbnailPipeline& thumbnails_;
};

}  // namespace mxcd::api
