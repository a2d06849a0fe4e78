#include "mock/state.h"

namespace sluice::mock {

MockState::MockState(MockBehavior initial)
    : initial_(initial), behavior_(std::make_shared<const MockBehavior>(std::move(initial))) {}

std::shared_ptr<const MockBehavior> MockState::snapshot() const {
  std::lock_guard lock(mu_);
  return behavior_;
}

MockBehavior MockState::behavior() const { return *snapshot(); }

void MockState::setBehavior(MockBehavior behavior) {
  auto next = std::make_shared<const MockBehavior>(std::move(behavior));
  std::lock_guard lock(mu_);
  behavior_ = std::move(next);
}

core::Result<void> MockState::configure(std::string_view json) {
  std::lock_guard lock(mu_);  // held across read-modify-write: concurrent updates do not lose keys
  MockBehavior next = *behavior_;
  auto r = applyMockBehaviorJson(next, json);
  if (!r) return r;
  behavior_ = std::make_shared<const MockBehavior>(std::move(next));
  return {};
}

void MockState::reset() {
  setBehavior(initial_);
  sequence_.store(0);
  bill_.reset();
}

namespace {
MockPlan controlJson(std::string body) {
  MockPlan p;
  p.body = std::move(body);
  p.headers.push_back({"content-type", "application/json"});
  return p;
}
}  // namespace

MockPlan MockState::plan(const MockRequest& request, core::WallTime now) {
  const std::string_view path = normalizePath(request.target);
  if (path.starts_with("/mock/")) {
    if (path == "/mock/bill" && request.method == "GET") return controlJson(bill_.toJson());
    if (path == "/mock/config" && request.method == "GET") return controlJson(mockBehaviorToJson(*snapshot()));
    if (path == "/mock/config" && request.method == "POST") {
      auto r = configure(request.body);
      if (!r) {
        return errorPlan(core::wireError(r.error().code).http_status, r.error().message, "invalid_request_error");
      }
      return controlJson(mockBehaviorToJson(*snapshot()));
    }
    if (path == "/mock/reset" && request.method == "POST") {
      reset();
      return controlJson("{\"ok\":true}");
    }
  }
  const std::shared_ptr<const MockBehavior> b = snapshot();
  MockPlan p = generateResponse(request, *b, GenerateContext{sequence_.fetch_add(1), now});
  if (p.generation_endpoint) bill_.recordReceived();
  return p;
}

}  // namespace sluice::mock
