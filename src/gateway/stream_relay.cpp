#include "gateway/stream_relay.h"

#include "core/pricing.h"

namespace sluice::gateway {

StreamRelay::StreamRelay(const Options& o)
    : filter_(proto::StreamFilter::Options{.client_wants_usage = o.client_wants_usage, .capture = o.capture}),
      cap_total_(core::mulSaturating(o.cap, o.choices)),
      has_output_(o.has_output),
      choices_(o.choices) {}

StreamRelay::Step StreamRelay::put(std::string_view data) {
  if (!filter_.put(data, out_)) {
    failure_ = {AttemptError::kMalformedStream, 0};
    return Step::kFail;
  }
  const proto::StreamAccounting& acc = filter_.accounting();
  if (!committed_) {
    if (acc.upstream_error) {
      // The provider failed inside a 200 stream before any token: as good as
      // a 5xx, and nothing reached the client yet, so try again elsewhere.
      failure_ = {AttemptError::kStreamError, 0};
      return Step::kFail;
    }
    if (acc.output_text_bytes == 0 && acc.finish_reason.empty() && !acc.done && acc.usage == std::nullopt) {
      return Step::kHold;
    }
    committed_ = true;
    commit_pending_ = true;
  }
  if (has_output_ && outputTokensAtLeast(acc.events, acc.output_text_bytes, choices_) > cap_total_) {
    return Step::kCapExceeded;
  }
  return Step::kSend;
}

void StreamRelay::account(std::string_view data) {
  (void)filter_.put(data, out_);
  out_.clear();
}

void StreamRelay::cut(std::string_view message, bool append_done) {
  filter_.cut(out_, core::ErrorCode::kUpstreamError, message, append_done);
}

bool StreamRelay::complete() const { return filter_.accounting().done || filter_.finished() || !filter_.midEvent(); }

}  // namespace sluice::gateway
