#include "core/ip_network.hpp"

#include <charconv>
#include <string>

namespace mxcd {

namespace ip = boost::asio::ip;

ip::address normalize_address(const ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, address.to_v6());
  }
  return address;
}

std::optional<IpNetwork> IpNetwork::parse(std::string_view text) {
  std::string_view address_text = text;
  std::optional<unsigned> prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    address_text = text.substr(0, slash);
    std::string_view digits = text.substr(slash + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
      return std::nullopt;
    }
    prefix = value;
  }
  boost::system::error_code ec;
  ip::address address = ip::make_address(std::string(address_text), ec);
  if (ec) return std::nullopt;
  address = normalize_address(address);
  unsigned max_prefix = address.is_v4() ? 32 : 128;
  if (prefix.value_or(max_prefix) > max_prefix) return std::nullopt;
  return IpNetwork{address, prefix.value_or(max_prefix)};
}

bool IpNetwork::contains(const ip::address& candidate_raw) const {
  ip::address candidate = normalize_address(candidate_raw);
  if (candidate.is_v4() != address.is_v4()) return false;
  auto compare = [this](const auto& a, const auto& b) {
    unsigned bits = prefix_length;
    for (std::size_t i = 0; i < a.size() && bits > 0; ++i) {
      unsigned take = bits >= 8 ? 8 : bits;
      unsigned char mask = static_cast<unsigned char>(0xFF << (8 - take));
      if ((a[i] & mask) != (b[i] & mask)) return false;
      bits -= take;
    }
    return true;
  };
  if (address.is_v4()) return compare(address.to_v4().to_bytes(), candidate.to_v4().to_bytes());
  return compare(address.to_v6().to_bytes(), candidate.to_v6().to_bytes());
}

}  // namespace mxcd
