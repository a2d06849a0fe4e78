// When `sluice serve` gives freed memory back after a burst of request bodies.
#include "cli/memory_release.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace sluice::cli {
namespace {

constexpr size_t kMiB = 1u << 20;

TEST(BurstReleasePolicy, ReleasesOnceWhenABurstIsOver) {
  BurstReleasePolicy p(32 * kMiB);
  EXPECT_FALSE(p.tick(0, 0));
  EXPECT_FALSE(p.tick(10 * kMiB, 20 * kMiB)) << "below the burst size: nothing to give back";
  EXPECT_FALSE(p.tick(90 * kMiB, 100 * kMiB)) << "the burst is on";
  EXPECT_FALSE(p.tick(30 * kMiB, 90 * kMiB)) << "still above a quarter of its peak";
  EXPECT_TRUE(p.tick(20 * kMiB, 30 * kMiB)) << "down to a fifth of the peak";
  EXPECT_FALSE(p.tick(0, 20 * kMiB)) << "once per burst";
  EXPECT_FALSE(p.tick(0, 0));
}

TEST(BurstReleasePolicy, ABurstBetweenTwoTicksCounts) {
  // The peak is what the server saw between two looks, however short.
  BurstReleasePolicy p(32 * kMiB);
  EXPECT_TRUE(p.tick(0, 64 * kMiB));
  EXPECT_FALSE(p.tick(0, 0));
  EXPECT_FALSE(p.tick(40 * kMiB, 40 * kMiB));
  EXPECT_TRUE(p.tick(5 * kMiB, 40 * kMiB));
}

TEST(ReleaseFreeMemory, RunsWithTheAllocatorAtHand) {
  // The tests use glibc's malloc (only the sluice binary links tcmalloc).
  EXPECT_EQ(std::string(memoryReleaser()), "glibc");
  for (int i = 0; i < 64; ++i) {
    void* p = std::malloc(kMiB);
    std::memset(p, 1, kMiB);
    std::free(p);
  }
  releaseFreeMemory();
}

}  // namespace
}  // namespace sluice::cli
