#include "http/byte_range.hpp"

#include <gtest/gtest.h>

namespace mxcd::http {
namespace {

using Kind = RangeRequest::Kind;

void expect_partial(std::string_view header, std::uint64_t size, std::uint64_t first,
                    std::uint64_t last) {
  RangeRequest r = parse_range(header, size);
  EXPECT_EQ(r.kind, Kind::partial) << header;
  EXPECT_EQ(r.first, first) << header;
  EXPECT_EQ(r.last, last) << header;
}

TEST(Range, SingleRanges) {
  expect_partial("bytes=0-9", 100, 0, 9);
  expect_partial("bytes=10-", 100, 10, 99);
  expect_partial("bytes=-10", 100, 90, 99);
  expect_partial("bytes=90-1000", 100, 90, 99);  // clamped to the end
  expect_partial("bytes=-1000", 100, 0, 99);     // suffix longer than the file
  expect_partial("bytes=99-99", 100, 99, 99);
  expect_partial("Bytes=5-6", 100, 5, 6);  // the unit is case-insensitive
}

TEST(Range, Unsatisfiable) {
  EXPECT_EQ(parse_range("bytes=100-", 100).kind, Kind::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=100-200", 100).kind, Kind::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-0", 100).kind, Kind::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=0-", 0).kind, Kind::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-5", 0).kind, Kind::unsatisfiable);
}

// Positions past 2^64 - 1 are still positions: beyond any file, so a first byte there cannot be
// served and a last byte there means "to the end", as a smaller number would.
TEST(Range, NumbersBeyondSixtyFourBits) {
  EXPECT_EQ(parse_range("bytes=99999999999999999999-", 100).kind, Kind::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=18446744073709551616-", 100).kind, Kind::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=99999999999999999999-99999999999999999999", 100).kind,
            Kind::unsatisfiable);
  expect_partial("bytes=0-99999999999999999999", 100, 0, 99);
  expect_partial("bytes=7-18446744073709551616", 100, 7, 99);
  expect_partial("bytes=-99999999999999999999", 100, 0, 99);
}

TEST(Range, IgnoredHeadersServeTheWhole) {
  for (const char* header :
       {"", "bytes=0-1,3-4", "lines=0-1", "bytes=5-1", "bytes=abc", "bytes=-", "bytes=1",
        "bytes=-1-2", "bytes=--5", "bytes=+5-6", "bytes=5-+6", "bytes", "bytes = 5-6"}) {
    EXPECT_EQ(parse_range(header, 100).kind, Kind::whole) << header;
  }
}

}  // namespace
}  // namespace mxcd::http
