#include "core/ip_network.hpp"

#include <gtest/gtest.h>

namespace mxcd {
namespace {

boost::asio::ip::address ip(const char* text) { return boost::asio::ip::make_address(text); }

TEST(IpNetwork, Parse) {
  EXPECT_TRUE(IpNetwork::parse("10.0.0.0/8"));
  EXPECT_TRUE(IpNetwork::parse("127.0.0.1"));
  EXPECT_TRUE(IpNetwork::parse("::1/128"));
  EXPECT_TRUE(IpNetwork::parse("0.0.0.0/0"));
  for (const char* bad : {"", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/x", "not-an-ip",
                          "10.0.0.0/8/8", "300.1.1.1"}) {
    EXPECT_FALSE(IpNetwork::parse(bad)) << bad;
  }
  EXPECT_EQ(IpNetwork::parse("127.0.0.1")->prefix_length, 32u);
}

TEST(IpNetwork, Contains) {
  auto ten = *IpNetwork::parse("10.0.0.0/8");
  EXPECT_TRUE(ten.contains(ip("10.255.1.2")));
  EXPECT_FALSE(ten.contains(ip("11.0.0.1")));
  EXPECT_TRUE(IpNetwork::parse("192.168.1.7")->contains(ip("192.168.1.7")));
  EXPECT_FALSE(IpNetwork::parse("192.168.1.7")->contains(ip("192.168.1.8")));
  EXPECT_TRUE(IpNetwork::parse("0.0.0.0/0")->contains(ip("8.8.8.8")));
  EXPECT_TRUE(IpNetwork::parse("172.16.0.0/12")->contains(ip("172.31.255.255")));
  EXPECT_FALSE(IpNetwork::parse("172.16.0.0/12")->contains(ip("172.32.0.0")));
  EXPECT_TRUE(IpNetwork::parse("::1/128")->contains(ip("::1")));
  EXPECT_FALSE(IpNetwork::parse("::1/128")->contains(ip("127.0.0.1")));
  EXPECT_TRUE(IpNetwork::parse("fd00::/8")->contains(ip("fd12::1")));
}

TEST(IpNetwork, MappedAddressesMatchIpv4Networks) {
  EXPECT_TRUE(IpNetwork::parse("10.0.0.0/8")->contains(ip("::ffff:10.1.2.3")));
  EXPECT_TRUE(IpNetwork::parse("::ffff:10.1.2.3")->contains(ip("10.1.2.3")));
}

}  // namespace
}  // namespace mxcd
