#pragma once
/// @file
/// @brief Stage "relay" of a streamed attempt: the provider's SSE goes
/// through proto::StreamFilter (usage withheld unless asked for, output
/// counted live), and the relay says when the answer may be committed to the
/// client (its first token: before that, a failed attempt can still fall
/// back unseen) and when the provider has passed the output cap. No I/O:
/// the exchange writes what out() holds.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "gateway/attempt_policy.h"
#include "proto/stream_filter.h"

namespace sluice::gateway {

class StreamRelay {
 public:
  struct Options {
    bool client_wants_usage = false;
    /// Output text kept for an exact count (null: none).
    proto::OutputText* capture = nullptr;
    bool has_output = true;
    int64_t cap = 0;  ///< per completion
    int64_t choices = 1;
  };

  enum class Step : uint8_t {
    kHold,         ///< nothing for the client yet (no token so far)
    kSend,         ///< out() has bytes for the client
    kFail,         ///< the attempt failed (failure() says how): stop it
    kCapExceeded,  ///< the provider ignores the output cap: cut the stream
  };

  explicit StreamRelay(const Options& options);

  /// Filters `data` into out().
  [[nodiscard]] Step put(std::string_view data);
  /// Counts `data` without relaying it (the client left; the provider bills
  /// what it already sent).
  void account(std::string_view data);
  /// True once, when the stream becomes the client's answer (its first
  /// token, finish or usage): the exchange then sends the response head.
  [[nodiscard]] bool takeCommit() {
    const bool now = commit_pending_;
    commit_pending_ = false;
    return now;
  }
  [[nodiscard]] bool committed() const { return committed_; }
  /// Marks an answer without a token (a 2xx stream that ended empty) committed.
  void commitEmpty() { committed_ = true; }
  /// Why put() said kFail.
  [[nodiscard]] AttemptFailure failure() const { return failure_; }

  /// Client-bound bytes filtered so far; the exchange takes them.
  [[nodiscard]] std::string& out() { return out_; }
  /// Ends the client's stream with an error event (and [DONE] if asked),
  /// appended to out().
  void cut(std::string_view message, bool append_done);
  /// The stream ended where an answer may end ([DONE], or between events).
  [[nodiscard]] bool complete() const;
  [[nodiscard]] const proto::StreamAccounting& accounting() const { return filter_.accounting(); }

 private:
  proto::StreamFilter filter_;
  std::string out_;
  int64_t cap_total_;
  bool has_output_;
  int64_t choices_;
  bool committed_ = false;
  bool commit_pending_ = false;
  AttemptFailure failure_;
};

}  // namespace sluice::gateway
