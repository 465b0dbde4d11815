// A Matrix error as a value: HTTP status, errcode, human-readable message, and any extra
// JSON fields or headers the specification attaches (soft_logout, Retry-After).
// Modules return these instead of throwing; the HTTP layer turns one into a JSON response.
#pragma once

#include <boost/json/object.hpp>

#include <string>
#include <utility>
#include <vector>

namespace mxcd {

struct MatrixError {
  unsigned status = 500;
  std::string errcode = "M_UNKNOWN";
  std::string message;
  boost::json::object extra_fields;
  std::vector<std::pair<std::string, std::string>> extra_headers;

  boost::json::object to_json() const;

  static MatrixError bad_request(std::string message);    // 400 M_UNKNOWN
  static MatrixError invalid_param(std::string message);  // 400 M_INVALID_PARAM
  static MatrixError missing_token();                     // 401 M_MISSING_TOKEN
  static MatrixError forbidden(std::string message);      // 403 M_FORBIDDEN
  static MatrixError guest_forbidden();                   // 403 M_GUEST_ACCESS_FORBIDDEN
  static MatrixError not_found(std::string message);      // 404 M_NOT_FOUND
  static MatrixError unrecognized();                      // 404 M_UNRECOGNIZED
  static MatrixError method_not_allowed();                // 405 M_UNRECOGNIZED
  static MatrixError cannot_overwrite();                  // 409 M_CANNOT_OVERWRITE_MEDIA
  static MatrixError too_large(std::string message);      // 413 M_TOO_LARGE
  static MatrixError limit_exceeded(std::string message, long long retry_after_ms);  // 429
  static MatrixError internal(std::string message);     // 500 M_UNKNOWN
  static MatrixError unavailable(std::string message);  // 503 M_UNKNOWN
  static MatrixError insufficient_storage();            // 507 M_UNKNOWN
  static MatrixError not_yet_uploaded();                // 504 M_NOT_YET_UPLOADED
};

}  // namespace mxcd
