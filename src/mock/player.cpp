#include "mock/player.h"

namespace sluice::mock {

namespace {
// Events written per loop turn before yielding, so one fast stream cannot
// starve the other connections of its loop.
constexpr int kEventsPerTurn = 64;
constexpr core::Nanos kBackpressureRetry = std::chrono::milliseconds(1);
}  // namespace

MockPlayer::MockPlayer(net::Dispatcher& loop, std::shared_ptr<MockState> state, std::unique_ptr<MockSink> sink)
    : loop_(loop), state_(std::move(state)), sink_(std::move(sink)) {}

void MockPlayer::start(const net::HttpRequest& request, bool keep_alive) {
  if (keep_alive) self_ = shared_from_this();
  plan_ = state_->plan(MockRequest{request.method, request.target, request.body}, loop_.clock().wallNow());
  arm(plan_.delay_before_headers, &MockPlayer::sendHeaders);
}

void MockPlayer::stop() {
  if (finished_) return;
  billSent(false);  // what the transport took before it went away
  finish();
}

void MockPlayer::finish() {
  finished_ = true;
  timer_.reset();
  pending_.reset();
  // Last: may drop the last reference, but callers always hold one of their own
  // (a locked weak_ptr in a step, the owner for stop()).
  self_.reset();
}

void MockPlayer::arm(core::Nanos delay, void (MockPlayer::*step)()) {
  std::weak_ptr<MockPlayer> weak = weak_from_this();
  auto fn = [weak, step] {
    if (auto self = weak.lock(); self && !self->finished_) ((*self).*step)();
  };
  if (delay <= core::Nanos{0}) {
    timer_.reset();
    loop_.post(std::move(fn));
  } else {
    timer_ = loop_.schedule(delay, std::move(fn));
  }
}

void MockPlayer::sendHeaders() {
  Bill& bill = state_->bill();
  if (!plan_.billable) {
    if (plan_.generation_endpoint && plan_.status >= 400) bill.recordError(plan_.status, plan_.model);
    const int status = plan_.status;
    sink_->respond(status, plan_.headers, std::move(plan_.body));
    if (!finished_) finish();
    return;
  }
  if (!plan_.stream) {
    // The whole answer was generated before the first byte: bill all of it.
    bill.recordServed(plan_.model, plan_.prompt_tokens, plan_.completion_tokens);
    switch (plan_.fault) {
      case Fault::kStall: sink_->begin(200, plan_.headers); return;  // nothing more, ever (until stop())
      case Fault::kReset: {
        sink_->begin(200, plan_.headers);
        if (finished_) return;
        sink_->data(plan_.body.substr(0, plan_.body.size() / 2));
        if (finished_) return;
        sink_->abort();
        if (!finished_) finish();
        return;
      }
      case Fault::kNone:
      case Fault::kMalformed:  // already truncated by the generator
        sink_->respond(200, plan_.headers, std::move(plan_.body));
        if (!finished_) finish();
        return;
    }
    return;
  }
  bill.recordServed(plan_.model, plan_.prompt_tokens, 0);
  sink_->begin(200, plan_.headers);
  if (!finished_) pump();
}

bool MockPlayer::triggerFault() {
  if (fault_done_ || plan_.fault == Fault::kNone) return false;
  // A fault due after more events than the stream has still hits before [DONE].
  if (events_written_ < plan_.fault_after_events && !pending_->done) return false;
  fault_done_ = true;
  switch (plan_.fault) {
    case Fault::kReset:
      billSent(false);  // what the socket took goes out before the reset
      sink_->abort();
      if (!finished_) finish();
      return true;
    case Fault::kStall: return true;  // stays unfinished: the transport sees silence
    case Fault::kMalformed: send(malformedEvent(), 0); return finished_;
    case Fault::kNone: break;
  }
  return false;
}

void MockPlayer::send(std::string bytes, uint32_t completion_tokens) {
  queued_bytes_ += bytes.size();
  if (completion_tokens > 0) unbilled_.emplace_back(queued_bytes_, completion_tokens);
  sink_->data(std::move(bytes));
  // A sink that ended the response inside data() (the in-process client
  // cancelling from its onData) took the bytes first.
  billSent(false);
}

void MockPlayer::billSent(bool all) {
  // What the transport took: everything handed to it minus what it still
  // queues (a socket that could not take it all yet).
  const size_t pending = all ? 0 : std::min<uint64_t>(sink_->pendingBytes(), queued_bytes_);
  const uint64_t sent = queued_bytes_ - pending;
  while (!unbilled_.empty() && unbilled_.front().first <= sent) {
    state_->bill().addCompletion(plan_.model, unbilled_.front().second);
    unbilled_.pop_front();
  }
}

void MockPlayer::pump() {
  billSent(false);
  for (int written = 0; !finished_; ++written) {
    if (!pending_) {
      pending_ = plan_.events->next();
      pending_waited_ = false;
      if (!pending_) {
        // The answer is complete: what is still queued goes out with it.
        billSent(true);
        sink_->end();
        if (!finished_) finish();
        return;
      }
    }
    if (!pending_waited_ && pending_->delay > core::Nanos{0}) {
      pending_waited_ = true;
      arm(pending_->delay, &MockPlayer::pump);
      return;
    }
    pending_waited_ = true;
    if (written >= kEventsPerTurn) {
      arm(core::Nanos{0}, &MockPlayer::pump);
      return;
    }
    if (sink_->pendingBytes() > kHighWaterBytes) {
      arm(kBackpressureRetry, &MockPlayer::pump);
      return;
    }
    if (triggerFault()) return;
    StreamEvent ev = std::move(*pending_);
    pending_.reset();
    // Billed as the transport takes it (bill.h).
    send(std::move(ev.bytes), ev.completion_tokens);
    ++events_written_;
  }
}

}  // namespace sluice::mock
