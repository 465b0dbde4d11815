#include "http/request_head.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <utility>

namespace {

using mxcd::http::check_request_head;
namespace beast_http = boost::beast::http;

beast_http::fields fields(std::initializer_list<std::pair<const char*, const char*>> lines) {
  beast_http::fields f;
  for (auto [name, value] : lines) f.insert(name, value);
  return f;
}

// The status check_request_head answers with, 0 when the head passes.
unsigned status(unsigned version, const beast_http::fields& f) {
  auto error = check_request_head(version, f);
  return error ? error->status : 0;
}

TEST(RequestHead, HostIsRequiredOnceInHttp11) {
  EXPECT_EQ(status(11, fields({{"Host", "a"}})), 0u);
  EXPECT_EQ(status(11, fields({})), 400u);
  EXPECT_EQ(status(11, fields({{"Host", "a"}, {"Host", "b"}})), 400u);
  EXPECT_EQ(status(10, fields({})), 0u);
}

TEST(RequestHead, ChunkedAsTheOnlyCodingPasses) {
  EXPECT_EQ(status(11, fields({{"Host", "a"}, {"Transfer-Encoding", "chunked"}})), 0u);
  EXPECT_EQ(status(11, fields({{"Host", "a"}, {"Transfer-Encoding", "Chunked"}})), 0u);
}

TEST(RequestHead, LastCodingNotChunkedIsRefused) {
  for (const char* te : {"xchunked", "chunked, gzip", "identity", "gzip", "", " , "}) {
    EXPECT_EQ(status(11, fields({{"Host", "a"}, {"Transfer-Encoding", te}})), 400u) << te;
  }
}

TEST(RequestHead, ChunkedTwiceIsRefused) {
  EXPECT_EQ(status(11, fields({{"Host", "a"}, {"Transfer-Encoding", "chunked, chunked"}})), 400u);
  EXPECT_EQ(status(11, fields({{"Host", "a"},
                               {"Transfer-Encoding", "chunked"},
                               {"Transfer-Encoding", "chunked"}})),
            400u);
}

TEST(RequestHead, CodingsBeforeChunkedAreNotImplemented) {
  EXPECT_EQ(status(11, fields({{"Host", "a"}, {"Transfer-Encoding", "gzip, chunked"}})), 501u);
  EXPECT_EQ(status(11, fields({{"Host", "a"},
                               {"Transfer-Encoding", "x-foo"},
                               {"Transfer-Encoding", "chunked"}})),
            501u);
}

TEST(RequestHead, TransferEncodingWithContentLengthIsRefused) {
  EXPECT_EQ(
      status(11,
             fields({{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}})),
      400u);
  EXPECT_EQ(status(11, fields({{"Host", "a"}, {"Content-Length", "5"}})), 0u);
}

}  // namespace
