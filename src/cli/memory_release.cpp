#include "cli/memory_release.h"

#include <malloc.h>

#include <algorithm>

// gperftools' C entry point, declared weak: non-null only when the binary
// links tcmalloc (src/app: SLUICE_TCMALLOC), so the same code works in the
// sanitizer build and the tests, which use glibc's malloc.
extern "C" void MallocExtension_ReleaseFreeMemory(void) __attribute__((weak));

namespace sluice::cli {

bool BurstReleasePolicy::tick(size_t now, size_t peak) {
  high_ = std::max({high_, peak, now});
  if (high_ < burst_bytes_ || now > high_ / 4) return false;
  high_ = 0;
  return true;
}

void releaseFreeMemory() {
  if (MallocExtension_ReleaseFreeMemory != nullptr) {
    MallocExtension_ReleaseFreeMemory();
  } else {
    malloc_trim(0);
  }
}

const char* memoryReleaser() { return MallocExtension_ReleaseFreeMemory != nullptr ? "tcmalloc" : "glibc"; }

}  // namespace sluice::cli
