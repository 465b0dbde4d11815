// Slots: at most `count` holders at once, urgent waiters served before background ones and
// each kind in order, a place in line given up by a waiter that goes away, and nobody left
// waiting after close().
#include "core/slots.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace mxcd {
namespace {

namespace asio = boost::asio;
using Priority = Slots::Priority;

// Takes a slot, records its name, and keeps the slot in `held` until the test releases it.
asio::awaitable<void> take(Slots& slots, Priority priority, std::string name,
                           std::vector<std::string>& order, std::vector<Slots::Slot>& held) {
  Slots::Slot slot = co_await slots.acquire(priority);
  order.push_back(slot ? name : name + " refused");
  if (slot) held.push_back(std::move(slot));
}

// Runs what is ready, without waiting for the waiters' timers.
void settle(asio::io_context& io) {
  io.restart();
  while (io.poll() > 0) {
  }
}

TEST(Slots, AtMostCountHoldersAndUrgentFirst) {
  asio::io_context io;
  Slots slots(2);
  std::vector<std::string> order;
  std::vector<Slots::Slot> held;
  for (const char* name : {"b1", "b2", "b3", "b4"}) {
    asio::co_spawn(io, take(slots, Priority::background, name, order, held), asio::detached);
  }
  settle(io);
  EXPECT_EQ(order, (std::vector<std::string>{"b1", "b2"}));
  EXPECT_EQ(slots.waiting(Priority::background), 2u);
  asio::co_spawn(io, take(slots, Priority::urgent, "u1", order, held), asio::detached);
  settle(io);
  EXPECT_EQ(slots.waiting(Priority::urgent), 1u) << "no slot is free";

  held.erase(held.begin());  // one released: the urgent waiter goes before b3 and b4
  settle(io);
  EXPECT_EQ(order, (std::vector<std::string>{"b1", "b2", "u1"}));
  held.front().release();
  held.erase(held.begin());
  settle(io);
  EXPECT_EQ(order, (std::vector<std::string>{"b1", "b2", "u1", "b3"}));
  EXPECT_EQ(held.size(), 2u);
  EXPECT_EQ(slots.waiting(Priority::background), 1u);

  slots.close();  // b4 stops waiting, and nothing waits from now on
  settle(io);
  EXPECT_EQ(slots.waiting(Priority::background), 0u);
  asio::co_spawn(io, take(slots, Priority::urgent, "u2", order, held), asio::detached);
  settle(io);
  EXPECT_EQ(order, (std::vector<std::string>{"b1", "b2", "u1", "b3", "b4 refused", "u2 refused"}));
}

TEST(Slots, AWaiterThatGoesAwayGivesUpItsPlace) {
  Slots slots(1);
  std::vector<std::string> order;
  std::vector<Slots::Slot> held;
  {
    asio::io_context io;
    asio::co_spawn(io, take(slots, Priority::urgent, "first", order, held), asio::detached);
    asio::co_spawn(io, take(slots, Priority::urgent, "gone", order, held), asio::detached);
    settle(io);
    EXPECT_EQ(slots.waiting(Priority::urgent), 1u);
  }  // the io_context goes, and with it the waiting coroutine
  EXPECT_EQ(slots.waiting(Priority::urgent), 0u);
  held.clear();
  asio::io_context io;
  asio::co_spawn(io, take(slots, Priority::background, "later", order, held), asio::detached);
  io.run();
  EXPECT_EQ(order, (std::vector<std::string>{"first", "later"}));
}

}  // namespace
}  // namespace mxcd
