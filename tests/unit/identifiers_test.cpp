#include "core/identifiers.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace mxcd {
namespace {

TEST(MediaId, AcceptsTheUrlSafeBase64Alphabet) {
  EXPECT_TRUE(is_valid_media_id("abcXYZ019_-"));
  EXPECT_TRUE(is_valid_media_id("a"));
  EXPECT_TRUE(is_valid_media_id(std::string(255, 'a')));
}

TEST(MediaId, RejectsAnythingThatCouldFormAPath) {
  for (std::string bad : {"", "..", ".", "a/b", "a\\b", "a.b", "a%2Fb", "a b", "é"}) {
    EXPECT_FALSE(is_valid_media_id(bad)) << bad;
  }
  EXPECT_FALSE(is_valid_media_id(std::string("a\0b", 3)));
  EXPECT_FALSE(is_valid_media_id(std::string(256, 'a')));
}

TEST(ServerName, AcceptsTheSpecGrammar) {
  for (const char* good :
       {"example.org", "example.org:8448", "localhost", "1.2.3.4", "1.2.3.4:80", "[::1]",
        "[::1]:8448", "[2001:db8::7]:1", "my-server.example", "a:65535"}) {
    EXPECT_TRUE(is_valid_server_name(good)) << good;
  }
  EXPECT_TRUE(is_valid_server_name(std::string(255, 'a')));
}

TEST(ServerName, RejectsBadHostsAndPorts) {
  for (const char* bad :
       {"", "..", ".", "a/b", "a\\b", "exa mple.org", "example.org:", "example.org:0",
        "example.org:65536", "example.org:123456", "example.org:8a", "[::1", "[::1]x", "[not-ipv6]",
        "[]", "a_b.org", "example.org%2F..", "host:1:2"}) {
    EXPECT_FALSE(is_valid_server_name(bad)) << bad;
  }
  EXPECT_FALSE(is_valid_server_name(std::string("a\0b", 3)));
  EXPECT_FALSE(is_valid_server_name(std::string(256, 'a')));
}

TEST(GeneratedMediaId, Is24AlphanumericCharactersAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    std::string id = generate_media_id();
    ASSERT_EQ(id.size(), 24u);
    for (char c : id) ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << id;
    ASSERT_TRUE(is_valid_media_id(id));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 2000u);
}

TEST(MxcUri, JoinsServerAndId) {
  EXPECT_EQ(mxc_uri("example.org", "abc"), "mxc://example.org/abc");
}

}  // namespace
}  // namespace mxcd
