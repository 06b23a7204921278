#include "webhook/deadline_queue.h"

namespace hybrid_guard::webhook {

void DeadlineQueue::Entry::disarm() {
  if (queue_ != nullptr) queue_->unlink(*this);
}

DeadlineQueue::~DeadlineQueue() {
  while (front_ != nullptr) unlink(*front_);
}

void DeadlineQueue::arm(Entry& entry, SteadyTime now) {
  entry.disarm();
  entry.due_ = now + timeout_;
  entry.queue_ = this;
  entry.previous_ = back_;
  entry.next_ = nullptr;
  (back_ != nullptr ? back_->next_ : front_) = &entry;
  back_ = &entry;
}

std::optional<SteadyTime> DeadlineQueue::nextDue() const {
  if (front_ == nullptr) return std::nullopt;
  return front_->due_;
}

DeadlineQueue::Entry* DeadlineQueue::popDue(SteadyTime now) {
  Entry* entry = front_;
  if (entry == nullptr || entry->due_ > now) return nullptr;
  unlink(*entry);
  return entry;
}

void DeadlineQueue::unlink(Entry& entry) {
  (entry.previous_ != nullptr ? entry.previous_->next_ : front_) = entry.next_;
  (entry.next_ != nullptr ? entry.next_->previous_ : back_) = entry.previous_;
  entry.queue_ = nullptr;
  entry.previous_ = nullptr;
  entry.next_ = nullptr;
}

}  // namespace hybrid_guard::webhook
