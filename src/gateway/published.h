#pragma once
/// @file
/// @brief Read-mostly shared state with lock-free reads on the hot path.
///
/// A writer publishes a new immutable value; each reader (one per event loop)
/// keeps a LocalView that compares a generation counter (one relaxed-acquire
/// atomic load per request) and takes the mutex only when something changed.
/// Readers therefore never contend with each other, and an old value stays
/// alive while a request still uses it.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace sluice::gateway {

template <typename T>
class Published {
 public:
  explicit Published(std::shared_ptr<const T> initial) : value_(std::move(initial)) {}

  void publish(std::shared_ptr<const T> next) {
    std::lock_guard lock(mu_);
    value_ = std::move(next);
    generation_.fetch_add(1, std::memory_order_release);
  }
  [[nodiscard]] std::shared_ptr<const T> current() const {
    std::lock_guard lock(mu_);
    return value_;
  }
  [[nodiscard]] uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;
  std::atomic<uint64_t> generation_{1};
};

/// A single thread's cached view of a Published<T>. Not thread-safe itself.
template <typename T>
class LocalView {
 public:
  explicit LocalView(const Published<T>& source) : source_(&source) {}

  /// The current value; valid until the next call to get() on this view.
  [[nodiscard]] const std::shared_ptr<const T>& get() {
    const uint64_t g = source_->generation();
    if (g != seen_) {
      cached_ = source_->current();
      seen_ = g;
    }
    return cached_;
  }

 private:
  const Published<T>* source_;
  uint64_t seen_ = 0;
  std::shared_ptr<const T> cached_;
};

}  // namespace sluice::gateway
