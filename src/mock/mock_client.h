#pragma once
/// @file
/// @brief The in-process mock provider: a net::UpstreamClient with no sockets.
///
/// The gateway uses it for providers of `kind: mock`, so the quick start and
/// many tests run offline. Requests are answered by the same generator and
/// player as `sluice mock-upstream` (same bytes, same knobs, same bill).
///
/// Contract (as net::UpstreamClient):
/// - start() never calls back re-entrantly; onHeaders/onData/onComplete run
///   later from Dispatcher callbacks on `loop`.
/// - Exactly one onComplete ends every call: kNone after the whole body,
///   kReset for an injected reset (after the partial data), kFirstByteTimeout /
///   kIdleTimeout / kTotalTimeout when the request's timeouts expire (so an
///   injected stall ends like it would over the network; a timeout <= 0 is
///   disabled), kCancelled after cancel().
/// - cancel() stops every further callback and calls onComplete(kCancelled)
///   once, synchronously from inside cancel() (as net's HTTP client does);
///   the handle may be destroyed in that callback. cancel() after onComplete
///   is a no-op.
/// - Destroying the call handle before onComplete abandons the call silently:
///   no further callbacks at all (as net's HTTP client does).
/// - An injected reset: onData has carried the bytes written before the cut.
/// Loop-confined: create, use and destroy the client and its calls on `loop`'s
/// thread. `state` may be shared by clients on several loops.

#include <memory>

#include "mock/state.h"
#include "net/http.h"

namespace sluice::mock {

[[nodiscard]] std::unique_ptr<net::UpstreamClient> makeMockUpstreamClient(net::Dispatcher& loop,
                                                                          std::shared_ptr<MockState> state);

/// The built-in provider of `kind: mock` as the gateway sees it: one
/// in-process client per loop, all sharing one MockState (knobs and bill).
/// `sluice serve` wires it into gateway::GatewayDeps::mock_provider.
class MockProvider final : public net::InProcessProvider {
 public:
  explicit MockProvider(std::shared_ptr<MockState> state = std::make_shared<MockState>()) : state_(std::move(state)) {}
  [[nodiscard]] std::unique_ptr<net::UpstreamClient> makeClient(net::Dispatcher& loop) override {
    return makeMockUpstreamClient(loop, state_);
  }
  [[nodiscard]] const std::shared_ptr<MockState>& state() const { return state_; }

 private:
  std::shared_ptr<MockState> state_;
};

}  // namespace sluice::mock
