#include "http/forwarded_for.hpp"

#include <algorithm>
#include <string>

namespace mxcd::http {

namespace asio = boost::asio;

asio::ip::address forwarded_client(const asio::ip::address& peer, std::string_view forwarded_for,
                                   const std::vector<IpNetwork>& trusted_proxies) {
  auto is_trusted = [&](const asio::ip::address& a) {
    return std::any_of(trusted_proxies.begin(), trusted_proxies.end(),
                       [&](const IpNetwork& n) { return n.contains(a); });
  };
  if (!is_trusted(peer)) return peer;
  asio::ip::address client = peer;
  while (!forwarded_for.empty()) {
    auto comma = forwarded_for.rfind(',');
    std::string_view item =
        comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
    forwarded_for =
        comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(std::string(item), ec);
    if (ec) break;
    client = normalize_address(address);
    if (!is_trusted(client)) break;
  }
  return client;
}

}  // namespace mxcd::http
