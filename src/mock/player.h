#pragma once
/// @file
/// @brief Plays a MockPlan onto a transport on one event loop: the waits, the
/// pacing, the injected faults and the billing. Shared by the in-process mock
/// client and the mock HTTP server, so both behave (and bill) identically.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "mock/generator.h"
#include "mock/state.h"
#include "net/http.h"

namespace sluice::mock {

/// Where a played response goes. Called on the player's loop only.
class MockSink {
 public:
  virtual ~MockSink() = default;
  /// A whole response (content-length framing).
  virtual void respond(int status, const net::Headers& headers, std::string body) = 0;
  /// Starts a response whose body follows in data() calls.
  virtual void begin(int status, const net::Headers& headers) = 0;
  virtual void data(std::string bytes) = 0;
  /// The body is complete.
  virtual void end() = 0;
  /// The connection breaks mid-response (injected reset).
  virtual void abort() = 0;
  /// Bytes queued and not yet taken by the transport (backpressure); once
  /// the transport is gone, the bytes it never took.
  [[nodiscard]] virtual size_t pendingBytes() const { return 0; }
};

/// One request's response in flight. Always owned by a shared_ptr; timers only
/// hold weak references, so dropping the owner (or calling stop()) ends it.
///
/// Timeline: wait `delay_before_headers`, then either a whole response or the
/// headers followed by the stream events, each after its own delay. Every sink
/// call happens from a Dispatcher callback, never from inside start().
/// Billing follows the rules in bill.h.
class MockPlayer : public std::enable_shared_from_this<MockPlayer> {
 public:
  /// Don't queue more than this much unsent data on a slow client.
  static constexpr size_t kHighWaterBytes = 256 * 1024;

  MockPlayer(net::Dispatcher& loop, std::shared_ptr<MockState> state, std::unique_ptr<MockSink> sink);

  /// Plans the response (using the loop's clock) and schedules it. With
  /// `keep_alive`, the player owns itself until it finishes or stop() is
  /// called (the server's mode: nobody else holds it).
  void start(const net::HttpRequest& request, bool keep_alive);
  /// No further sink calls; cancels the pending timer; releases keep_alive.
  void stop();

  [[nodiscard]] bool finished() const { return finished_; }
  [[nodiscard]] const MockPlan& plan() const { return plan_; }

 private:
  void sendHeaders();
  void pump();
  void finish();
  void arm(core::Nanos delay, void (MockPlayer::*step)());
  bool triggerFault();
  /// Hands an event to the transport and bills what the transport has taken.
  void send(std::string bytes, uint32_t completion_tokens);
  /// Bills the events whose bytes the transport took (all queued: `all`).
  void billSent(bool all);

  net::Dispatcher& loop_;
  std::shared_ptr<MockState> state_;
  std::unique_ptr<MockSink> sink_;
  std::shared_ptr<MockPlayer> self_;
  std::unique_ptr<net::Timer> timer_;
  MockPlan plan_;
  std::optional<StreamEvent> pending_;
  bool pending_waited_ = false;
  uint64_t events_written_ = 0;
  uint64_t queued_bytes_ = 0;                           // bytes handed to the sink so far
  std::deque<std::pair<uint64_t, uint32_t>> unbilled_;  // (end offset, completion tokens) not yet taken
  bool fault_done_ = false;
  bool finished_ = false;
};

}  // namespace sluice::mock
