#include "media/scrubber.hpp"

#include <gtest/gtest.h>

namespace mxcd {
namespace {

using namespace std::chrono_literals;
using Clock = ScrubPace::Clock;

TEST(ScrubPace, WaitsAsLongAsTheBytesTakeAtTheRate) {
  const Clock::time_point start{};
  ScrubPace pace(1000, start);
  EXPECT_EQ(pace.wait_after(500, start), 500ms);
  // Read right after the wait: the next 500 bytes are due one second after the start.
  EXPECT_EQ(pace.wait_after(500, start + 500ms), 500ms);
  // A slow reader owes nothing.
  EXPECT_EQ(pace.wait_after(100, start + 5s), 0ms);
}

TEST(ScrubPace, CatchesUpByOneSecondAtMost) {
  const Clock::time_point start{};
  ScrubPace pace(1000, start);
  EXPECT_EQ(pace.wait_after(100, start + 60s), 0ms);  // idle for a minute
  // One second's worth may follow at once (900 bytes more are free), the rest is paced.
  EXPECT_EQ(pace.wait_after(900, start + 60s), 0ms);
  EXPECT_EQ(pace.wait_after(2000, start + 60s), 2s);
}

TEST(ScrubPace, LargeRatesGiveShortWaits) {
  const Clock::time_point start{};
  ScrubPace pace(100ULL << 20, start);
  auto wait = pace.wait_after(1 << 20, start);
  EXPECT_GT(wait, 9ms);
  EXPECT_LT(wait, 11ms);
}

}  // namespace
}  // namespace mxcd
