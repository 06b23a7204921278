#pragma once

#include <chrono>
#include <optional>

namespace hybrid_guard::webhook {

using SteadyTime = std::chrono::steady_clock::time_point;

// Deadlines that all lie one fixed timeout after the moment they were armed. Armed in time order,
// they are also due in that order, so a plain intrusive list does what a heap or a timer wheel
// would, in O(1): arming appends, disarming unlinks, the front is always the next one due.
// Not thread-safe: one event loop owns a queue and everything armed in it.
class DeadlineQueue {
 public:
  // Embedded in whatever has a deadline; in at most one queue at a time.
  class Entry {
   public:
    Entry() = default;
    ~Entry() { disarm(); }
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;

    void disarm();
    bool armed() const { return queue_ != nullptr; }

   private:
    friend class DeadlineQueue;
    DeadlineQueue* queue_ = nullptr;
    Entry* previous_ = nullptr;
    Entry* next_ = nullptr;
    SteadyTime due_{};
  };

  explicit DeadlineQueue(std::chrono::milliseconds timeout) : timeout_(timeout) {}
  ~DeadlineQueue();
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  // Due at now + timeout, leaving the queue the entry was in. `now` never goes backwards.
  void arm(Entry& entry, SteadyTime now);
  // When the front entry is due; null when the queue is empty.
  std::optional<SteadyTime> nextDue() const;
  // The front entry, disarmed, if it is due at `now`; else null.
  Entry* popDue(SteadyTime now);

 private:
  void unlink(Entry& entry);

  std::chrono::milliseconds timeout_;
  Entry* front_ = nullptr;
  Entry* back_ = nullptr;
};

}  // namespace hybrid_guard::webhook
