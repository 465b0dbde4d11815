#include "core/matrix_error.hpp"

#include <algorithm>

namespace mxcd {

namespace {
MatrixError make(unsigned status, const char* errcode, std::string message) {
  MatrixError e;
  e.status = status;
  e.errcode = errcode;
  e.message = std::move(message);
  return e;
}
}  // namespace

boost::json::object MatrixError::to_json() const {
  boost::json::object body = extra_fields;
  body["errcode"] = errcode;
  body["error"] = message;
  return body;
}

MatrixError MatrixError::bad_request(std::string m) { return make(400, "M_UNKNOWN", std::move(m)); }
MatrixError MatrixError::invalid_param(std::string m) {
  return make(400, "M_INVALID_PARAM", std::move(m));
}
MatrixError MatrixError::missing_token() {
  return make(401, "M_MISSING_TOKEN", "Missing access token");
}
MatrixError MatrixError::forbidden(std::string m) { return make(403, "M_FORBIDDEN", std::move(m)); }
MatrixError MatrixError::guest_forbidden() {
  return make(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is not allowed here");
}
MatrixError MatrixError::not_found(std::string m) { return make(404, "M_NOT_FOUND", std::move(m)); }
MatrixError MatrixError::unrecognized() {
  return make(404, "M_UNRECOGNIZED", "Unrecognized request");
}
MatrixError MatrixError::method_not_allowed() {
  return make(405, "M_UNRECOGNIZED", "Method not allowed on this endpoint");
}
MatrixError MatrixError::cannot_overwrite() {
  return make(409, "M_CANNOT_OVERWRITE_MEDIA", "Media already has content or is being uploaded");
}
MatrixError MatrixError::too_large(std::string m) { return make(413, "M_TOO_LARGE", std::move(m)); }
MatrixError MatrixError::limit_exceeded(std::string m, long long retry_after_ms) {
  MatrixError e = make(429, "M_LIMIT_EXCEEDED", std::move(m));
  retry_after_ms = std::max(retry_after_ms, 0LL);
  e.extra_fields["retry_after_ms"] = retry_after_ms;
  // Retry-After is in whole seconds; round up so a client never retries too early.
  e.extra_headers.emplace_back("Retry-After", std::to_string((retry_after_ms + 999) / 1000));
  return e;
}
MatrixError MatrixError::internal(std::string m) { return make(500, "M_UNKNOWN", std::move(m)); }
MatrixError MatrixError::unavailable(std::string m) { return make(503, "M_UNKNOWN", std::move(m)); }
MatrixError MatrixError::insufficient_storage() {
  return make(507, "M_UNKNOWN", "The server has no space left to store this file");
}
MatrixError MatrixError::not_yet_uploaded() {
  return make(504, "M_NOT_YET_UPLOADED", "The media has not been uploaded yet");
}

}  // namespace mxcd
