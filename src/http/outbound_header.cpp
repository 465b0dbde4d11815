#include "http/outbound_header.hpp"

#include "core/http_grammar.hpp"

namespace mxcd::http {

bool is_safe_header_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

Status set_outbound_header(boost::beast::http::fields& fields, std::string_view name,
                           std::string_view value) {
  if (!is_token(name))
    return MatrixError::bad_request("Refusing to send a header with an invalid name");
  if (!is_safe_header_value(value)) {
    return MatrixError::bad_request("Refusing to send the " + std::string(name) +
                                    " header: its value holds a line break or NUL");
  }
  fields.set(name, value);
  return {};
}

}  // namespace mxcd::http
