#include "http/body_deadline.hpp"
#include "http/connection_budget.hpp"

#include <gtest/gtest.h>

namespace {

using namespace mxcd::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const Clock::time_point t0{};

ConnectionSlot at(ConnectionState state, int seconds) {
  return {state, t0 + std::chrono::seconds(seconds)};
}

TEST(ConnectionBudget, AcceptsBelowBothLimits) {
  auto a = admit_connection({at(ConnectionState::pending, 1), at(ConnectionState::busy, 2)}, 4, 2);
  EXPECT_TRUE(a.accept);
  EXPECT_FALSE(a.shed);
}

TEST(ConnectionBudget, FullPendingBudgetShedsTheOldestPending) {
  auto a = admit_connection({at(ConnectionState::pending, 5), at(ConnectionState::idle, 1),
                             at(ConnectionState::pending, 3)},
                            10, 2);
  EXPECT_TRUE(a.accept);
  EXPECT_EQ(a.shed, 2u);
}

TEST(ConnectionBudget, FullServerShedsTheOldestIdleFirst) {
  auto a = admit_connection({at(ConnectionState::pending, 1), at(ConnectionState::idle, 4),
                             at(ConnectionState::idle, 2), at(ConnectionState::busy, 0)},
                            4, 3);
  EXPECT_TRUE(a.accept);
  EXPECT_EQ(a.shed, 2u);
}

TEST(ConnectionBudget, FullServerWithoutIdleShedsTheOldestPending) {
  auto a = admit_connection({at(ConnectionState::busy, 0), at(ConnectionState::pending, 4),
                             at(ConnectionState::pending, 2)},
                            3, 3 + 1);
  EXPECT_TRUE(a.accept);
  EXPECT_EQ(a.shed, 2u);
}

TEST(ConnectionBudget, RefusesOnlyWhenEverySlotIsBusy) {
  auto a = admit_connection({at(ConnectionState::busy, 0), at(ConnectionState::busy, 1)}, 2, 1);
  EXPECT_FALSE(a.accept);
  EXPECT_FALSE(a.shed);
}

TEST(BodyDeadline, SmallBodiesHaveAWholeBodyDeadline) {
  EXPECT_EQ(body_deadline(t0, 0, false, 30s, 1024), t0 + 30s);
  EXPECT_EQ(body_deadline(t0, 1 << 20, false, 30s, 1024), t0 + 30s);
}

TEST(BodyDeadline, StreamedBodiesMustKeepUpWithTheRateAfterTheGrace) {
  EXPECT_EQ(body_deadline(t0, 0, true, 30s, 1024), t0 + 30s);
  EXPECT_EQ(body_deadline(t0, 1024 * 10, true, 30s, 1024), t0 + 30s);
  EXPECT_EQ(body_deadline(t0, 1024 * 100, true, 30s, 1024), t0 + 100s);
  EXPECT_EQ(body_deadline(t0, 5, true, 30s, 0), Clock::time_point::max());
}

}  // namespace
