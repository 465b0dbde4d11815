// An IP network (address + prefix length), for the trusted-proxy list.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string_view>

namespace mxcd {

struct IpNetwork {
  boost::asio::ip::address address;
  unsigned prefix_length = 0;

  // "10.0.0.0/8", "::1/128" or a bare address (a network of one).
  static std::optional<IpNetwork> parse(std::string_view text);
  bool contains(const boost::asio::ip::address& candidate) const;
};

// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) become plain IPv4, so one list serves both.
boost::asio::ip::address normalize_address(const boost::asio::ip::address& address);

}  // namespace mxcd
