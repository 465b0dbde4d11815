// The one gate for the headers of every request mxcd sends: to the homeserver (whoami), to S3,
// and to other servers. Boost.Beast 1.81 writes field values exactly as given, so a value
// holding CR or LF ends the header early: whoever chose the value (a client's access token, a
// file's content type) could add headers of their own or smuggle a whole second request from
// mxcd's address. NUL is refused too, since servers disagree on where it ends a value.
#pragma once

#include "core/result.hpp"

#include <boost/beast/http/fields.hpp>

#include <string_view>

namespace mxcd::http {

// True when the value may stand in a header line: no CR, LF or NUL.
bool is_safe_header_value(std::string_view value);

// Sets name: value on an outgoing request's fields, or refuses (400, naming the header but not
// the value, which may be a secret) when the name is not an RFC 9110 token or the value is not
// safe. Nothing is set then.
Status set_outbound_header(boost::beast::http::fields& fields, std::string_view name,
                           std::string_view value);

}  // namespace mxcd::http
