#include <fmt/format.h>

#include <thread>

#include "cli/commands.h"
#include "mock/behavior.h"
#include "mock/exact.h"
#include "mock/mock_server.h"

namespace sluice::cli {

int mockUpstreamCommand(const std::string& host, int port, int threads, const std::vector<std::string>& knobs) {
  mock::MockServerOptions options;
  options.host = host;
  if (port < 0 || port > 65535) {
    fmt::print(stderr, "error: --port must be 0..65535\n");
    return 2;
  }
  options.port = static_cast<uint16_t>(port);
  options.threads = std::max(threads, 1);
  for (const auto& k : knobs) {
    if (auto r = mock::applyMockKnobAssignment(options.behavior, k); !r) {
      fmt::print(stderr, "error: {}\n", r.error().message);
      return 2;
    }
  }
  // The catalog and the encodings of its models load while the server starts
  // (a fraction of a second each, BENCHMARKS.md), not on the first request
  // for one of them; a request that comes first waits for the same load.
  std::thread warm([] { mock::warmExactCounting(); });
  const int rc = mock::runMockUpstream(options);
  warm.join();
  return rc;
}

}  // namespace sluice::cli
