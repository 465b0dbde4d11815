// Which address a request is logged and rate-limited under. The peer of the TCP connection,
// unless the peer is a trusted proxy: then the X-Forwarded-For chain is read from the right
// (each proxy appends the address it received the request from) and the first address that
// is not itself a trusted proxy is the client. Everything left of that address was written by
// the client and cannot be believed. An item that is not an IP address ends the walk: the
// last address believed so far is the client.
#pragma once

#include "core/ip_network.hpp"

#include <boost/asio/ip/address.hpp>

#include <string_view>
#include <vector>

namespace mxcd::http {

// peer must already be normalized (core/ip_network.hpp); the result is normalized too.
// forwarded_for is the X-Forwarded-For value, empty when the request has none.
boost::asio::ip::address forwarded_client(const boost::asio::ip::address& peer,
                                          std::string_view forwarded_for,
                                          const std::vector<IpNetwork>& trusted_proxies);

}  // namespace mxcd::http
