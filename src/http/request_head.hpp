// The checks a request head must pass before its body can be framed (RFC 9112 §3.2, §6.1).
// Beast frames a body as chunked only when the last transfer coding is "chunked" and
// otherwise by Content-Length, so a head with any other Transfer-Encoding would have its
// body read as the next request. Such heads are refused here, before any body is read, and
// the connection is closed after the answer.
#pragma once

#include "core/matrix_error.hpp"

#include <boost/beast/http/fields.hpp>

#include <optional>

namespace mxcd::http {

// Empty when the head may be served. Otherwise the error to answer with:
//   400  HTTP/1.1 without exactly one Host; Transfer-Encoding together with Content-Length;
//        a Transfer-Encoding whose last coding is not chunked, or with chunked twice
//   501  a coding before the final chunked (gzip, chunked): mxcd decodes none
// `version` is Beast's: 10 for HTTP/1.0, 11 for HTTP/1.1.
std::optional<MatrixError> check_request_head(unsigned version,
                                              const boost::beast::http::fields& headers);

}  // namespace mxcd::http
