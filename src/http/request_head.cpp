#include "http/request_head.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <string>
#include <vector>

namespace mxcd::http {

namespace beast_http = boost::beast::http;

std::optional<MatrixError> check_request_head(unsigned version, const beast_http::fields& headers) {
  if (version >= 11 && headers.count(beast_http::field::host) != 1) {
    return MatrixError::bad_request("An HTTP/1.1 request needs exactly one Host header");
  }
  auto [first, last] = headers.equal_range(beast_http::field::transfer_encoding);
  if (first == last) return std::nullopt;
  if (headers.count(beast_http::field::content_length) > 0) {
    return MatrixError::bad_request("Transfer-Encoding and Content-Length together");
  }
  // Several Transfer-Encoding lines form one list, in order.
  std::vector<std::string> codings;
  for (auto it = first; it != last; ++it) {
    for (auto coding : beast_http::token_list(it->value())) {
      codings.emplace_back(coding);
    }
  }
  if (codings.empty() || !boost::beast::iequals(codings.back(), "chunked")) {
    return MatrixError::bad_request("The last transfer coding must be chunked");
  }
  for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
    if (boost::beast::iequals(codings[i], "chunked")) {
      return MatrixError::bad_request("The chunked transfer coding is applied twice");
    }
  }
  if (codings.size() > 1) {
    MatrixError error =
        MatrixError::bad_request("Transfer codings other than chunked are not supported");
    error.status = 501;
    return error;
  }
  return std::nullopt;
}

}  // namespace mxcd::http
