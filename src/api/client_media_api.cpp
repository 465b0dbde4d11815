#include "api/client_media_api.hpp"

#include "core/content_disposition.hpp"
#include "core/identifiers.hpp"
#include "http/byte_range.hpp"
#include "thumbnail/thumbnailer.hpp"

#include <boost/json/object.hpp>

#include <charconv>

namespace mxcd::api {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;
using beast_http::verb;
using http::Request;
using http::Response;

namespace {

// The sandbox keeps uploaded HTML or SVG from running script in our origin.
constexpr std::string_view kContentSecurityPolicy =
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
    "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

constexpr const char* kLegacyVersions[] = {"v3", "r0", "v1"};

Response ok_json(const boost::json::object& body) {
  return http::json_response(beast_http::status::ok, body);
}

Result<MediaKey> media_key(const Request& request) {
  const std::string& server_name = request.params.at(0);
  const std::string& media_id = request.params.at(1);
  if (!is_valid_server_name(server_name)) return MatrixError::invalid_param("Invalid server name");
  if (!is_valid_media_id(media_id)) return MatrixError::invalid_param("Invalid media ID");
  return MediaKey{server_name, media_id};
}

// timeout_ms: absent means the configured default; always capped at the configured maximum.
Result<Duration> download_wait(const Request& request, const Config::Media& media) {
  auto text = request.query_param("timeout_ms");
  if (!text) return media.download_wait_default;
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || value < 0) {
    return MatrixError::invalid_param("timeout_ms must be a non-negative integer");
  }
  return std::min(Duration(value), media.download_wait_max);
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  // A list of entity tags; weak comparison, as RFC 9110 asks for If-None-Match.
  while (!if_none_match.empty()) {
    auto comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

MatrixError range_not_satisfiable() {
  MatrixError e;
  e.status = 416;
  e.message = "The requested range is not satisfiable";
  return e;
}

// The headers every response carrying media bytes has.
void set_media_headers(Response& response, const std::string& content_type,
                       const std::string& disposition) {
  response.set_header("Content-Type", content_type);
  response.set_header("Content-Disposition", disposition);
  response.set_header("Content-Security-Policy", kContentSecurityPolicy);
  response.set_header("X-Content-Type-Options", "nosniff");
  response.set_header("Referrer-Policy", "no-referrer");
}

// ETag and Cache-Control; true when the client's copy is current (answer 304).
bool set_cache_headers(Response& response, const Request& request, const BlobId& blob,
                       bool legacy_path) {
  const std::string etag = "\"" + blob.name + "\"";
  response.set_header("ETag", etag);
  response.set_header("Cache-Control", legacy_path
                                           ? "public, max-age=86400, s-maxage=0, proxy-revalidate"
                                           : "private, max-age=86400");
  return etag_matches(request.header(beast_http::field::if_none_match), etag);
}

// A positive integer query parameter, or nullopt when absent or anything else.
std::optional<unsigned> dimension(const Request& request, const char* name) {
  auto text = request.query_param(name);
  if (!text) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || value == 0) {
    return std::nullopt;
  }
  return value;
}

Result<ThumbnailRequest> thumbnail_request(const Request& request, DownloadRequest media) {
  ThumbnailRequest t{std::move(media)};
  auto width = dimension(request, "width");
  auto height = dimension(request, "height");
  if (!width || !height) {
    return MatrixError::bad_request("width and height must be positive integers");
  }
  t.width = *width;
  t.height = *height;
  auto method = request.query_param("method").value_or("scale");
  if (method != "crop" && method != "scale") {
    return MatrixError::bad_request("method must be crop or scale");
  }
  t.crop = method == "crop";
  auto animated = request.query_param("animated").value_or("false");
  if (animated != "true" && animated != "false") {
    return MatrixError::invalid_param("animated must be true or false");
  }
  t.animated = animated == "true";
  return t;
}

UploadRequest upload_request(Request& request) {
  UploadRequest u;
  u.body = request.body;
  u.content_type = std::string(request.header(beast_http::field::content_type));
  if (auto name = request.query_param("filename")) u.upload_name = std::string(*name);
  return u;
}

}  // namespace

ClientMediaApi::ClientMediaApi(const Config& config, auth::Authenticator& authenticator,
                               UploadPipeline& uploads, DownloadPipeline& downloads,
                               ThumbnailPipeline& thumbnails)
    : config_(config),
      authenticator_(authenticator),
      uploads_(uploads),
      downloads_(downloads),
      thumbnails_(thumbnails) {}

void ClientMediaApi::add_routes(http::Router& router) {
  auto bind = [this](auto method) {
    return [this, method](Request& r) { return (this->*method)(r); };
  };
  auto download_on = [this](bool legacy) {
    return [this, legacy](Request& r) { return download(r, legacy); };
  };
  auto thumbnail_on = [this](bool legacy) {
    return [this, legacy](Request& r) { return thumbnail(r, legacy); };
  };
  const std::vector<verb> get_head = {verb::get, verb::head};
  for (std::string version : kLegacyVersions) {
    std::string base = "/_matrix/media/" + version;
    router.add({verb::post}, base + "/upload", bind(&ClientMediaApi::upload),
               http::BodyMode::streamed);
    router.add({verb::put}, base + "/upload/{serverName}/{mediaId}", bind(&ClientMediaApi::fill),
               http::BodyMode::streamed);
    router.add(get_head, base + "/download/{serverName}/{mediaId}", download_on(true));
    router.add(get_head, base + "/download/{serverName}/{mediaId}/{fileName}", download_on(true));
    router.add({verb::get}, base + "/thumbnail/{serverName}/{mediaId}", thumbnail_on(true));
    router.add({verb::get}, base + "/config", bind(&ClientMediaApi::config));
  }
  // create takes no body, but clients may send an empty JSON object.
  router.add({verb::post}, "/_matrix/media/v1/create", bind(&ClientMediaApi::create),
             http::BodyMode::small);
  const std::string client = "/_matrix/client/v1/media";
  router.add(get_head, client + "/download/{serverName}/{mediaId}", download_on(false));
  router.add(get_head, client + "/download/{serverName}/{mediaId}/{fileName}", download_on(false));
  router.add({verb::get}, client + "/thumbnail/{serverName}/{mediaId}", thumbnail_on(false));
  router.add({verb::get}, client + "/config", bind(&ClientMediaApi::config));
}

asio::awaitable<Result<auth::Requester>> ClientMediaApi::member(Request& request) {
  auto requester = co_await authenticator_.authenticate(request);
  if (requester && requester->is_guest) co_return MatrixError::guest_forbidden();
  co_return requester;
}

asio::awaitable<Response> ClientMediaApi::upload(Request& request) {
  auto uploader = co_await member(request);
  if (!uploader) co_return http::error_response(uploader.error());
  UploadRequest upload = upload_request(request);
  auto key = co_await uploads_.upload(*uploader, std::move(upload));
  if (!key) co_return http::error_response(key.error());
  boost::json::object body;
  body["content_uri"] = mxc_uri(key->server_name, key->media_id);
  co_return ok_json(body);
}

asio::awaitable<Response> ClientMediaApi::create(Request& request) {
  auto uploader = co_await member(request);
  if (!uploader) co_return http::error_response(uploader.error());
  auto reservation = co_await uploads_.create(*uploader);
  if (!reservation) co_return http::error_response(reservation.error());
  boost::json::object body;
  body["content_uri"] = mxc_uri(reservation->key.server_name, reservation->key.media_id);
  body["unused_expires_at"] = reservation->expires_ts;
  co_return ok_json(body);
}

asio::awaitable<Response> ClientMediaApi::fill(Request& request) {
  auto uploader = co_await member(request);
  if (!uploader) co_return http::error_response(uploader.error());
  auto key = media_key(request);
  if (!key) co_return http::error_response(key.error());
  UploadRequest upload = upload_request(request);
  auto status = co_await uploads_.fill(*uploader, *key, std::move(upload));
  if (!status) co_return http::error_response(status.error());
  co_return ok_json({});
}

asio::awaitable<Response> ClientMediaApi::config(Request& request) {
  auto requester = co_await member(request);
  if (!requester) co_return http::error_response(requester.error());
  boost::json::object body;
  body["m.upload.size"] = config_.media.max_upload_size;
  co_return ok_json(body);
}

asio::awaitable<Status> ClientMediaApi::reader(Request& request, bool legacy_path) {
  if (legacy_path) co_return Status();                             // the legacy paths take no token
  auto requester = co_await authenticator_.authenticate(request);  // guests are welcome
  if (!requester) co_return requester.error();
  co_return Status();
}

asio::awaitable<Response> ClientMediaApi::download(Request& request, bool legacy_path) {
  if (auto allowed = co_await reader(request, legacy_path); !allowed) {
    co_return http::error_response(allowed.error());
  }
  auto key = media_key(request);
  if (!key) co_return http::error_response(key.error());
  std::optional<std::string> path_filename;
  if (request.params.size() > 2) {
    if (!is_valid_upload_name(request.params[2])) {
      co_return http::error_response(MatrixError::invalid_param("Invalid file name"));
    }
    path_filename = request.params[2];
  }
  auto wait = download_wait(request, config_.media);
  if (!wait) co_return http::error_response(wait.error());

  // Named, not a temporary: GCC 12 mishandles braced temporaries inside co_await.
  DownloadRequest wanted{*key, legacy_path, *wait};
  auto found = co_await downloads_.find(wanted);
  if (!found) co_return http::error_response(found.error());
  const MediaRecord& record = **found;
  const std::uint64_t size = record.blob->size;
  const std::string etag = "\"" + record.blob->name + "\"";

  Response response;
  if (set_cache_headers(response, request, *record.blob, legacy_path)) {
    response.status = beast_http::status::not_modified;
    co_return response;
  }
  const std::string disposition =
      content_disposition(record.content_type, path_filename ? path_filename : record.upload_name);
  const std::string content_type = served_content_type(record.content_type);

  // The spec lets the authenticated path redirect; the legacy one only when the client says
  // it follows redirects.
  if (!legacy_path || request.query_param("allow_redirect") == "true") {
    RedirectHeaders headers{content_type, disposition};
    if (auto url = downloads_.redirect_url(record, headers)) {
      Response redirect;
      redirect.status = beast_http::status::temporary_redirect;
      redirect.set_header("Location", *url);
      redirect.set_header("Cache-Control", "no-store");  // presigned URLs expire
      co_return redirect;
    }
  }

  set_media_headers(response, content_type, disposition);
  response.set_header("Accept-Ranges", "bytes");

  http::RangeRequest range;
  std::string_view if_range = request.header(beast_http::field::if_range);
  if (if_range.empty() || if_range == etag) {
    range = http::parse_range(request.header(beast_http::field::range), size);
  }
  if (range.kind == http::RangeRequest::Kind::unsatisfiable) {
    response = http::error_response(range_not_satisfiable());
    response.set_header("Content-Range", "bytes */" + std::to_string(size));
    co_return response;
  }
  ByteSpan span{0, size == 0 ? 0 : size - 1};
  if (range.kind == http::RangeRequest::Kind::partial) {
    span = {range.first, range.last};
    response.status = beast_http::status::partial_content;
    response.set_header("Content-Range", "bytes " + std::to_string(span.first) + "-" +
                                             std::to_string(span.last) + "/" +
                                             std::to_string(size));
  }
  const std::uint64_t length = size == 0 ? 0 : span.length();
  if (request.method == verb::head) {
    // Nothing to open: a HEAD must not start a fetch from object storage.
    response.body = http::HeadBody{length};
    co_return response;
  }
  std::optional<ByteSpan> wanted_range;
  if (range.kind == http::RangeRequest::Kind::partial) wanted_range = span;
  auto blob = co_await downloads_.open(record, wanted_range);
  if (!blob) co_return http::error_response(blob.error());
  response.body = http::FileBody{std::move(blob->fd), span.first - blob->start, length,
                                 std::move(blob->growing)};
  co_return response;
}

asio::awaitable<Response> ClientMediaApi::thumbnail(Request& request, bool legacy_path) {
  if (auto allowed = co_await reader(request, legacy_path); !allowed) {
    co_return http::error_response(allowed.error());
  }
  auto key = media_key(request);
  if (!key) co_return http::error_response(key.error());
  auto wait = download_wait(request, config_.media);
  if (!wait) co_return http::error_response(wait.error());
  auto wanted = thumbnail_request(request, DownloadRequest{*key, legacy_path, *wait});
  if (!wanted) co_return http::error_response(wanted.error());

  auto found = co_await thumbnails_.find(*wanted);
  if (!found) co_return http::error_response(found.error());
  const ThumbnailRecord& thumbnail = *found;
  Response response;
  if (set_cache_headers(response, request, thumbnail.blob, legacy_path)) {
    response.status = beast_http::status::not_modified;
    co_return response;
  }
  // The spec asks for inline with a filename such as thumbnail.png.
  const std::string filename =
      "thumbnail." + std::string(thumbnail::file_extension(thumbnail.content_type));
  set_media_headers(response, thumbnail.content_type, "inline; filename=" + filename);
  auto blob = co_await thumbnails_.open(thumbnail);
  if (!blob) co_return http::error_response(blob.error());
  response.body =
      http::FileBody{std::move(blob->fd), 0, thumbnail.blob.size, std::move(blob->growing)};
  co_return response;
}

}  // namespace mxcd::api
