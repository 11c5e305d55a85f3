// WorkerSlots: at most N holders, waiters served in order, a slot given back
// however its holder ends (an exception included), and stop() waking waiters.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/worker_slots.hpp"

namespace maild::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct World {
  asio::io_context io;
  asio::strand<asio::io_context::executor_type> strand{asio::make_strand(io)};
  WorkerSlots slots{strand, 2};
  std::vector<std::string> events;

  // Holds a slot for `hold`, then ends normally or by throwing.
  asio::awaitable<void> task(std::string name, std::chrono::milliseconds hold, bool fail) {
    try {
      const auto slot = co_await slots.acquire();
      events.push_back(name + " in");
      asio::steady_timer timer(strand, hold);
      co_await timer.async_wait(asio::use_awaitable);
      events.push_back(name + " out");
      if (fail) throw std::runtime_error("store error");
    } catch (const std::exception&) {
      events.push_back(name + " failed");
    }
  }
  void spawn(std::string name, std::chrono::milliseconds hold, bool fail = false) {
    asio::co_spawn(strand, task(std::move(name), hold, fail), asio::detached);
  }
};

TEST(WorkerSlots, AtMostTheLimitAndWaitersInOrder) {
  World w;
  w.spawn("a", 30ms);
  w.spawn("b", 500ms);
  w.spawn("c", 10ms);
  w.spawn("d", 10ms);
  w.io.run_for(5s);
  EXPECT_EQ(w.events, (std::vector<std::string>{"a in", "b in", "a out", "c in", "c out", "d in",
                                                "d out", "b out"}));
  EXPECT_EQ(w.slots.busy(), 0u);
}

TEST(WorkerSlots, AHolderThatThrowsGivesItsSlotBack) {
  World w;
  for (int i = 0; i < 4; ++i) w.spawn("f" + std::to_string(i), 5ms, true);
  w.spawn("last", 5ms);
  w.io.run_for(5s);
  ASSERT_FALSE(w.events.empty());
  EXPECT_EQ(w.events.back(), "last out");  // four failures did not use up both slots
  EXPECT_EQ(w.slots.busy(), 0u);
}

TEST(WorkerSlots, StopWakesTheWaiters) {
  World w;
  w.spawn("a", 200ms);
  w.spawn("b", 200ms);
  w.spawn("c", 0ms);
  asio::steady_timer stop(w.strand, 20ms);
  stop.async_wait([&](boost::system::error_code) {
    w.slots.stop();
    w.events.push_back("stop");
  });
  w.io.run_for(5s);
  ASSERT_GE(w.events.size(), 4u);
  EXPECT_EQ(w.events[2], "stop");
  EXPECT_EQ(w.events[3], "c in");  // did not wait for a or b
}

}  // namespace
}  // namespace maild::net
