#include "http/forwarded_for.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mxcd::http {
namespace {

std::vector<IpNetwork> networks(std::initializer_list<const char*> texts) {
  std::vector<IpNetwork> out;
  for (const char* text : texts) out.push_back(*IpNetwork::parse(text));
  return out;
}

// The client address for a request from peer carrying the given X-Forwarded-For value.
std::string client(const char* peer, std::string_view forwarded,
                   const std::vector<IpNetwork>& trusted) {
  return forwarded_client(boost::asio::ip::make_address(peer), forwarded, trusted).to_string();
}

const auto kLocalProxy = networks({"127.0.0.1/32"});
const auto kTwoProxies = networks({"127.0.0.1/32", "10.0.0.0/8"});

TEST(ForwardedFor, UntrustedPeerIsTheClientWhateverItClaims) {
  EXPECT_EQ(client("127.0.0.1", "203.0.113.7", {}), "127.0.0.1");
  EXPECT_EQ(client("192.0.2.9", "203.0.113.7", kTwoProxies), "192.0.2.9");
  EXPECT_EQ(client("192.0.2.9", "10.0.0.1", kTwoProxies), "192.0.2.9");
}

TEST(ForwardedFor, TrustedPeerWithoutHeaderIsTheClient) {
  EXPECT_EQ(client("127.0.0.1", "", kLocalProxy), "127.0.0.1");
}

TEST(ForwardedFor, OneHop) {
  EXPECT_EQ(client("127.0.0.1", "203.0.113.7", kLocalProxy), "203.0.113.7");
}

TEST(ForwardedFor, RightMostUntrustedAddressWins) {
  // The left-most entry was written by the client itself.
  EXPECT_EQ(client("127.0.0.1", "198.51.100.1, 203.0.113.7", kLocalProxy), "203.0.113.7");
  EXPECT_EQ(client("127.0.0.1", "203.0.113.7, 10.1.2.3", kTwoProxies), "203.0.113.7");
  EXPECT_EQ(client("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.2.3, 10.9.9.9", kTwoProxies),
            "203.0.113.7");
}

TEST(ForwardedFor, ChainOfOnlyTrustedProxiesEndsAtTheLeftMostOne) {
  EXPECT_EQ(client("127.0.0.1", "10.0.0.1, 10.0.0.2", kTwoProxies), "10.0.0.1");
}

TEST(ForwardedFor, MalformedItemStopsTheWalk) {
  // Nothing believed yet: the peer stays the client.
  EXPECT_EQ(client("127.0.0.1", "203.0.113.7, not-an-address", kLocalProxy), "127.0.0.1");
  EXPECT_EQ(client("127.0.0.1", "unknown", kLocalProxy), "127.0.0.1");
  // A port, brackets or an empty item are not addresses either.
  EXPECT_EQ(client("127.0.0.1", "203.0.113.7:4711", kLocalProxy), "127.0.0.1");
  EXPECT_EQ(client("127.0.0.1", "[2001:db8::1]", kLocalProxy), "127.0.0.1");
  EXPECT_EQ(client("127.0.0.1", "203.0.113.7,", kLocalProxy), "127.0.0.1");
  EXPECT_EQ(client("127.0.0.1", "203.0.113.7,,10.0.0.2", kTwoProxies), "10.0.0.2");
  // Past a trusted hop, the last address believed is the client.
  EXPECT_EQ(client("127.0.0.1", "203.0.113.7, garbage, 10.0.0.2", kTwoProxies), "10.0.0.2");
  EXPECT_EQ(client("127.0.0.1", "300.1.2.3, 10.0.0.2", kTwoProxies), "10.0.0.2");
}

TEST(ForwardedFor, SpacesAroundItemsAreIgnoredButNotTabs) {
  EXPECT_EQ(client("127.0.0.1", "   203.0.113.7   ", kLocalProxy), "203.0.113.7");
  EXPECT_EQ(client("127.0.0.1", "198.51.100.1 ,203.0.113.7 ", kLocalProxy), "203.0.113.7");
  EXPECT_EQ(client("127.0.0.1", "198.51.100.1 , 10.0.0.2 ,  ", kTwoProxies), "127.0.0.1");
  EXPECT_EQ(client("127.0.0.1", "\t203.0.113.7", kLocalProxy), "127.0.0.1");
}

TEST(ForwardedFor, Ipv6) {
  const auto v6_proxy = networks({"::1/128", "fd00::/8"});
  EXPECT_EQ(client("::1", "2001:db8::7", v6_proxy), "2001:db8::7");
  EXPECT_EQ(client("::1", "2001:db8::7, fd00::2", v6_proxy), "2001:db8::7");
  EXPECT_EQ(client("::1", "203.0.113.7", v6_proxy), "203.0.113.7");
  EXPECT_EQ(client("127.0.0.1", "2001:db8::7", kLocalProxy), "2001:db8::7");
  EXPECT_EQ(client("2001:db8::9", "203.0.113.7", v6_proxy), "2001:db8::9");
}

TEST(ForwardedFor, MappedAddressesCountAsIpv4) {
  EXPECT_EQ(client("127.0.0.1", "::ffff:203.0.113.7", kLocalProxy), "203.0.113.7");
  // A mapped form of a trusted proxy is trusted too, and skipped.
  EXPECT_EQ(client("127.0.0.1", "203.0.113.7, ::ffff:10.0.0.2", kTwoProxies), "203.0.113.7");
}

}  // namespace
}  // namespace mxcd::http
