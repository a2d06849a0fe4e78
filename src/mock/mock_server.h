#pragma once
/// @file
/// @brief `sluice mock-upstream`: the mock provider as a standalone HTTP server
/// (same generator, knobs and bill as the in-process client), for tests and
/// benchmarks.
///
/// Serves the endpoints of generator.h (with or without `/v1`) and the
/// `/mock/*` control endpoints of state.h.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "mock/behavior.h"
#include "mock/state.h"
#include "net/http.h"

namespace sluice::mock {

class MockPlayer;

struct MockServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 = any free port
  int threads = 1;
  MockBehavior behavior;
};

/// A running mock provider. start()/stop() from one controlling thread.
class MockServer {
 public:
  explicit MockServer(MockServerOptions options, const core::Clock& clock = core::SystemClock::instance());
  ~MockServer();
  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;

  /// Binds and starts the loops; false if binding failed.
  [[nodiscard]] bool start();
  /// The bound port (after start()).
  [[nodiscard]] uint16_t port() const;
  /// Stops accepting, lets exchanges finish until `deadline`, then closes the
  /// rest (stalled streams included). Idempotent.
  void stop(core::Nanos deadline = std::chrono::seconds(1));
  /// Knobs and bill; shared with the serving loops.
  [[nodiscard]] const std::shared_ptr<MockState>& state() const { return state_; }

 private:
  void track(const std::shared_ptr<MockPlayer>& player);

  MockServerOptions options_;
  const core::Clock& clock_;
  std::shared_ptr<MockState> state_;
  std::unique_ptr<net::HttpServer> server_;
  bool stopped_ = false;
  // Responses in flight, so stop() can end stalled ones (they would live until
  // their client leaves otherwise).
  std::mutex players_mu_;
  std::vector<std::weak_ptr<MockPlayer>> players_;
};

/// Runs a mock server: prints "mock-upstream listening on HOST:PORT" (the
/// real port when options.port is 0) to stdout once ready, then serves until
/// `*stop` becomes true or, when `stop` is null, until SIGINT/SIGTERM.
/// Returns the process exit code (1 if binding failed).
int runMockUpstream(const MockServerOptions& options, const std::atomic<bool>* stop = nullptr);

}  // namespace sluice::mock
