// The exchange with admission that answers a loop turn later: it waits,
// then serves; a client that leaves while admission decides is recorded and
// holds nothing once the answer comes.

#include <gtest/gtest.h>

#include "gateway/deferred_admission.h"
#include "gateway/pipeline.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kConfig = R"(
providers:
  demo: {kind: mock}
models:
  m: {provider: demo, input: 1, output: 2}
agents:
  a: {usd_per_day: 1, rpm: 100, tpm: 100000}
)";

constexpr std::string_view kBody = R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":20})";

struct Deferred : ::testing::Test {
  void SetUp() override {
    p.admission = [this](core::BudgetEngine& b, core::RateLimiter& r) {
      auto d = std::make_unique<testing::DeferredAdmission>(b, r, p.loop);
      control = d.get();
      return d;
    };
    ASSERT_TRUE(p.start(kConfig, {"a"}));
  }
  std::shared_ptr<testing::FakeServerStream> post() {
    auto stream = std::make_shared<testing::FakeServerStream>();
    net::HttpRequest req{"POST",
                         "/v1/chat/completions",
                         {{"authorization", "Bearer " + p.secrets["a"]}},
                         std::string(kBody)};
    p.gw->handler()(std::move(req), stream, p.loop);
    return stream;
  }
  testing::Pipeline p;
  testing::DeferredAdmission* control = nullptr;
};

TEST_F(Deferred, TheExchangeWaitsForTheAnswerThenServes) {
  auto s = post();
  EXPECT_EQ(s->status(), 0);  // nothing decided yet
  EXPECT_EQ(control->deferred, 1);
  p.loop.runReady();
  EXPECT_EQ(s->status(), 200);
  const auto r = p.lastRecord();
  EXPECT_EQ(r.outcome, store::Outcome::kOk);
  EXPECT_GT(r.cost_micro_usd, 0);
  EXPECT_EQ(p.gw->budgets().outstandingReservations(), 0u);
}

TEST_F(Deferred, AClientThatLeavesWhileAdmissionDecidesHoldsNothing) {
  auto s = post();
  s->disconnect();  // before admission answers
  p.loop.runReady();
  const auto r = p.lastRecord();
  EXPECT_EQ(r.outcome, store::Outcome::kClientAbort);
  EXPECT_EQ(r.http_status, 499);
  EXPECT_TRUE(r.attempts.empty());
  EXPECT_EQ(p.mock->bill().snapshot().totals.requests, 0u);  // never called upstream
  EXPECT_EQ(p.gw->budgets().outstandingReservations(), 0u);
  // The rate limiter's token charge was given back: the next call sees all of it.
  auto next = post();
  p.loop.runReady();
  ASSERT_EQ(next->status(), 200);
  EXPECT_EQ(p.sink->records().size(), 2u);
}

TEST_F(Deferred, ARefusalArrivesLaterToo) {
  p.setMock(R"({"completion_tokens": 10})");
  for (int i = 0; i < 3; ++i) {
    auto s = post();
    p.loop.runReady();
    EXPECT_EQ(s->status(), 200);
  }
  // A body Sluice refuses before admission is answered at once.
  auto stream = std::make_shared<testing::FakeServerStream>();
  net::HttpRequest bad{"POST", "/v1/chat/completions", {{"authorization", "Bearer " + p.secrets["a"]}}, "{"};
  p.gw->handler()(std::move(bad), stream, p.loop);
  EXPECT_EQ(stream->status(), 400);
  EXPECT_EQ(p.lastRecord().outcome, store::Outcome::kRejectedInvalid);
}

}  // namespace
}  // namespace sluice::gateway
