#include "mock/mock_client.h"

#include "mock/player.h"

namespace sluice::mock {
namespace {

using net::UpstreamErrorKind;

/// One in-process call. Owned by its MockCall handle (and, briefly, by posted
/// callbacks); the player reaches it through a weak reference.
class CallState final : public std::enable_shared_from_this<CallState> {
 public:
  CallState(net::Dispatcher& loop, net::UpstreamCallbacks& callbacks) : loop_(loop), callbacks_(&callbacks) {}

  void start(net::UpstreamRequest request, std::shared_ptr<MockState> state);

  // --- from the player (through ClientSink)
  void onBegin(int status, const net::Headers& headers) {
    if (done_) return;
    first_byte_timer_.reset();
    armIdle();
    callbacks_->onHeaders(status, headers);
  }
  void onData(std::string_view bytes) {
    if (done_) return;
    armIdle();
    callbacks_->onData(bytes);
  }
  void complete(UpstreamErrorKind kind) {
    if (done_) return;
    done_ = true;
    stopAll();
    callbacks_->onComplete(kind);
  }

  // --- from the handle
  void cancel() {
    // Synchronous, like net's HTTP client, so the two are interchangeable. The
    // guard: onComplete commonly destroys the handle that owns us.
    auto self = shared_from_this();
    complete(UpstreamErrorKind::kCancelled);
  }
  void abandon() {
    if (done_) return;
    done_ = true;
    stopAll();
  }

 private:
  void stopAll() {
    first_byte_timer_.reset();
    idle_timer_.reset();
    total_timer_.reset();
    if (player_) player_->stop();
  }

  std::unique_ptr<net::Timer> timeoutTimer(core::Nanos after, UpstreamErrorKind kind) {
    if (after <= core::Nanos{0}) return nullptr;
    return loop_.schedule(after, [weak = weak_from_this(), kind] {
      if (auto self = weak.lock()) self->complete(kind);
    });
  }

  void armIdle() { idle_timer_ = timeoutTimer(idle_timeout_, UpstreamErrorKind::kIdleTimeout); }

  net::Dispatcher& loop_;
  net::UpstreamCallbacks* callbacks_;
  std::shared_ptr<MockPlayer> player_;
  core::Nanos idle_timeout_{0};
  std::unique_ptr<net::Timer> first_byte_timer_;
  std::unique_ptr<net::Timer> idle_timer_;
  std::unique_ptr<net::Timer> total_timer_;
  bool done_ = false;
};

/// Forwards what the player plays to the call, if the call still exists.
class ClientSink final : public MockSink {
 public:
  explicit ClientSink(std::weak_ptr<CallState> call) : call_(std::move(call)) {}

  void respond(int status, const net::Headers& headers, std::string body) override {
    auto call = call_.lock();
    if (!call) return;
    // What an HTTP client would report for a content-length response.
    net::Headers with_length = headers;
    with_length.push_back({"content-length", std::to_string(body.size())});
    call->onBegin(status, with_length);
    if (!body.empty()) call->onData(body);
    call->complete(UpstreamErrorKind::kNone);
  }
  void begin(int status, const net::Headers& headers) override {
    if (auto call = call_.lock()) call->onBegin(status, headers);
  }
  void data(std::string bytes) override {
    if (auto call = call_.lock()) call->onData(bytes);
  }
  void end() override {
    if (auto call = call_.lock()) call->complete(UpstreamErrorKind::kNone);
  }
  void abort() override {
    if (auto call = call_.lock()) call->complete(UpstreamErrorKind::kReset);
  }

 private:
  std::weak_ptr<CallState> call_;
};

void CallState::start(net::UpstreamRequest request, std::shared_ptr<MockState> state) {
  idle_timeout_ = request.idle_timeout;
  first_byte_timer_ = timeoutTimer(request.first_byte_timeout, UpstreamErrorKind::kFirstByteTimeout);
  total_timer_ = timeoutTimer(request.total_timeout, UpstreamErrorKind::kTotalTimeout);
  player_ = std::make_shared<MockPlayer>(loop_, std::move(state), std::make_unique<ClientSink>(weak_from_this()));
  net::HttpRequest http;
  http.method = std::move(request.method);
  http.target = std::move(request.path);
  http.headers = std::move(request.headers);
  http.body = std::move(request.body);
  player_->start(http, /*keep_alive=*/false);
}

class MockCall final : public net::UpstreamCall {
 public:
  explicit MockCall(std::shared_ptr<CallState> state) : state_(std::move(state)) {}
  ~MockCall() override { state_->abandon(); }
  void cancel() override { state_->cancel(); }
  // The in-process provider holds the request from start() on.
  [[nodiscard]] bool requestWritten() const override { return true; }

 private:
  std::shared_ptr<CallState> state_;
};

class MockUpstreamClient final : public net::UpstreamClient {
 public:
  MockUpstreamClient(net::Dispatcher& loop, std::shared_ptr<MockState> state) : loop_(loop), state_(std::move(state)) {}

  std::unique_ptr<net::UpstreamCall> start(net::UpstreamRequest request, net::UpstreamCallbacks& callbacks) override {
    auto call = std::make_shared<CallState>(loop_, callbacks);
    call->start(std::move(request), state_);
    return std::make_unique<MockCall>(std::move(call));
  }
  // A mock call keeps everything it needs in its own CallState (the loop and
  // the shared MockState), so destroying this client cuts none of them, and
  // there is no pool to retire.
  [[nodiscard]] bool busy() const override { return false; }
  void retire() override {}

 private:
  net::Dispatcher& loop_;
  std::shared_ptr<MockState> state_;
};

}  // namespace

std::unique_ptr<net::UpstreamClient> makeMockUpstreamClient(net::Dispatcher& loop, std::shared_ptr<MockState> state) {
  return std::make_unique<MockUpstreamClient>(loop, std::move(state));
}

}  // namespace sluice::mock
