#include "webhook/deadline_queue.h"

#include "catch2/catch.hpp"

using namespace hybrid_guard::webhook;
using namespace std::chrono_literals;

TEST_CASE("deadlines come due in the order they were armed", "[deadline]") {
  DeadlineQueue queue(100ms);
  DeadlineQueue::Entry a, b, c;
  const SteadyTime t0{};
  CHECK_FALSE(queue.nextDue());
  queue.arm(a, t0);
  queue.arm(b, t0 + 10ms);
  queue.arm(c, t0 + 20ms);
  CHECK(queue.nextDue() == t0 + 100ms);

  SECTION("popped when due") {
    CHECK(queue.popDue(t0 + 99ms) == nullptr);
    CHECK(queue.popDue(t0 + 110ms) == &a);
    CHECK(queue.popDue(t0 + 110ms) == &b);
    CHECK(queue.popDue(t0 + 110ms) == nullptr);
    CHECK_FALSE(a.armed());
    CHECK(c.armed());
  }
  SECTION("re-arming moves an entry to the back") {
    queue.arm(a, t0 + 30ms);
    CHECK(queue.nextDue() == t0 + 110ms);
    CHECK(queue.popDue(t0 + 200ms) == &b);
    CHECK(queue.popDue(t0 + 200ms) == &c);
    CHECK(queue.popDue(t0 + 200ms) == &a);
  }
  SECTION("disarming, or destroying, takes an entry out") {
    b.disarm();
    {
      DeadlineQueue::Entry d;
      queue.arm(d, t0 + 25ms);
    }
    CHECK(queue.popDue(t0 + 1s) == &a);
    CHECK(queue.popDue(t0 + 1s) == &c);
    CHECK(queue.popDue(t0 + 1s) == nullptr);
  }
  SECTION("an entry moves between queues") {
    DeadlineQueue other(1s);
    other.arm(a, t0 + 30ms);
    CHECK(queue.popDue(t0 + 1s) == &b);
    CHECK(other.nextDue() == t0 + 1030ms);
    queue.arm(a, t0 + 40ms);
    CHECK_FALSE(other.nextDue());
  }
}
