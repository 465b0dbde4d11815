#include "http/response.hpp"

#include <boost/json/serialize.hpp>

namespace mxcd::http {

std::uint64_t Response::body_length() const {
  if (auto* text = std::get_if<std::string>(&body)) return text->size();
  if (auto* file = std::get_if<FileBody>(&body)) return file->length;
  return 0;
}

Response json_response(beast_http::status status, const boost::json::value& body) {
  Response response;
  response.status = status;
  response.headers.set(beast_http::field::content_type, "application/json");
  response.body = boost::json::serialize(body);
  return response;
}

Response error_response(const MatrixError& error) {
  Response response =
      json_response(static_cast<beast_http::status>(error.status), error.to_json());
  for (const auto& [name, value] : error.extra_headers) response.headers.set(name, value);
  return response;
}

}  // namespace mxcd::http
