#pragma once
/// @file
/// @brief Giving freed heap memory back to the system after a burst of
/// request bodies.
///
/// A burst of large request bodies (a hundred 1 MiB prompts at once) grows
/// the heap by their size; once they are answered the allocator keeps the
/// freed pages for reuse (tcmalloc's page heap, glibc's arenas), so the
/// gateway's resident memory stays at the burst's high-water mark. `sluice
/// serve` asks the server every second how many body bytes it held (now, and
/// the most since the last look); once a burst is over it returns the free
/// pages. Off the request path: the serve command's main thread does it.

#include <cstddef>

namespace sluice::cli {

/// When to release: after the server held at least `burst_bytes` of request
/// bodies at some moment, as soon as what it holds fell to a quarter of that
/// peak. Pure decision logic; one caller.
class BurstReleasePolicy {
 public:
  static constexpr size_t kDefaultBurstBytes = 32u << 20;
  explicit BurstReleasePolicy(size_t burst_bytes = kDefaultBurstBytes) : burst_bytes_(burst_bytes) {}

  /// `now`: body bytes held now; `peak`: the most held since the last call.
  /// True: release now (the burst is over; the next one is watched anew).
  [[nodiscard]] bool tick(size_t now, size_t peak);

 private:
  size_t burst_bytes_;
  size_t high_ = 0;  // the peak of the burst being watched
};

/// Returns the allocator's free pages to the system: tcmalloc's
/// MallocExtension::ReleaseFreeMemory() when the binary links tcmalloc (the
/// release build), else glibc's malloc_trim(0). Thread-safe; takes a few ms
/// for a few hundred MiB (the allocator's page lock is held meanwhile).
void releaseFreeMemory();

/// "tcmalloc" or "glibc": which of the two releaseFreeMemory() uses.
[[nodiscard]] const char* memoryReleaser();

}  // namespace sluice::cli
