// Media IDs and server names: the specification's grammar, checked before any lookup so that
// no network-supplied name can reach a file path or a query unvalidated.
#pragma once

#include <string>
#include <string_view>

namespace mxcd {

// 1 to 255 characters of the URL-safe base64 alphabet [A-Za-z0-9_-].
bool is_valid_media_id(std::string_view id);

// host[:port]: an IPv4 literal, a bracketed IPv6 literal or a DNS name of [A-Za-z0-9.-],
// at most 255 characters in all; the port 1 to 5 digits in 1..65535.
bool is_valid_server_name(std::string_view name);

// A new media ID: 24 characters of [A-Za-z0-9] from OpenSSL's CSPRNG (about 143 bits).
std::string generate_media_id();

std::string mxc_uri(std::string_view server_name, std::string_view media_id);

}  // namespace mxcd
