#include "http/response.hpp"

#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

namespace mxcd::http {

void Response::set_header(std::string_view name, std::string_view value) {
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    spdlog::warn("refused response header {}: its value contains a line break", name);
    return;
  }
  if (header_lines.empty()) header_lines.reserve(512);
  header_lines.append(name).append(": ").append(value).append("\r\n");
}

std::uint64_t Response::body_length() const {
  if (auto* text = std::get_if<std::string>(&body)) return text->size();
  if (auto* file = std::get_if<FileBody>(&body)) return file->length;
  if (auto* head = std::get_if<HeadBody>(&body)) return head->length;
  return 0;
}

Response json_response(beast_http::status status, const boost::json::value& body) {
  Response response;
  response.status = status;
  response.set_header("Content-Type", "application/json");
  response.body = boost::json::serialize(body);
  return response;
}

Response error_response(const MatrixError& error) {
  Response response = json_response(static_cast<beast_http::status>(error.status), error.to_json());
  for (const auto& [name, value] : error.extra_headers) response.set_header(name, value);
  return response;
}

}  // namespace mxcd::http
