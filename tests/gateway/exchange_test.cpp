// The request pipeline end to end, without sockets: a Gateway with the
// in-process mock provider, a manual-time dispatcher and a recording stream.
// Every timeout, backoff and first-token deadline is driven by the test.
#include <gtest/gtest.h>

#include "gateway/pipeline.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
using testing::FakeDispatcher;
using testing::FakeServerStream;

constexpr std::string_view kBaseConfig = R"(
providers:
  demo: {kind: mock, first_byte_timeout_ms: 500}
models:
  gpt-4o-mini: {provider: demo}
  gpt-4.1: {provider: demo}
profiles:
  main:
    fallbacks: {gpt-4.1: [gpt-4o-mini]}
resilience:
  retries: {max: 2, base_ms: 100, max_ms: 400}
  breaker: {failures: 100, open_ms: 1000}
budgets:
  on_short_budget: reject
agents:
  bot: {max_tokens_per_call: 100}
  broke: {usd_per_day: 0.000001}
  tight: {usd_per_day: 0.00001, max_tokens_per_call: 100}
)";

// A gateway on kBaseConfig with the given keys and usage sink.
std::unique_ptr<Gateway> makeGateway(const core::Clock& clock, decltype(GatewayDeps::keys) keys,
                                     std::shared_ptr<store::UsageSink> sink) {
  return testing::makeGateway(kBaseConfig, clock, std::move(keys), std::move(sink));
}

class ExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(p_.start(kBaseConfig, {"bot", "broke", "tight"}));
    gw_ = p_.gw.get();
  }

  std::shared_ptr<FakeServerStream> send(std::string_view agent, std::string body,
                                         std::string path = "/v1/chat/completions") {
    return p_.send(agent, std::move(body), std::move(path));
  }
  store::UsageRecord lastRecord() { return p_.lastRecord(); }
  void setMock(const std::string& json) { p_.setMock(json); }

  testing::Pipeline p_;
  core::ManualClock& clock_ = p_.clock;
  FakeDispatcher& loop_ = p_.loop;
  std::shared_ptr<store::MemoryUsageSink>& sink_ = p_.sink;
  Gateway* gw_ = nullptr;
};

TEST_F(ExchangeTest, ServesAndBillsWhatTheProviderReported) {
  auto s = send("bot", R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":7})");
  ASSERT_EQ(s->status(), 200) << s->body();
  EXPECT_EQ(s->header("x-sluice-served-model"), "gpt-4o-mini");
  EXPECT_FALSE(s->header("x-request-id").empty());
  auto r = lastRecord();
  EXPECT_EQ(r.outcome, store::Outcome::kOk);
  EXPECT_EQ(r.usage_source, store::UsageSource::kProvider);
  EXPECT_EQ(r.usage.output, 7);
  EXPECT_GT(r.cost_micro_usd, 0);
  EXPECT_EQ(s->header("x-sluice-cost-usd"), core::formatUsd(r.cost_micro_usd));
}

TEST_F(ExchangeTest, RejectsAnExhaustedBudgetWithoutCallingTheProvider) {
  auto s = send("broke", R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(s->status(), 429);
  EXPECT_EQ(s->header("x-should-retry"), "false");
  EXPECT_NE(s->body().find("insufficient_quota"), std::string::npos);
  EXPECT_EQ(s->header("x-sluice-cost-usd"), "0.000000") << "every settled answer says what it cost";
  auto r = lastRecord();
  EXPECT_EQ(r.outcome, store::Outcome::kRejectedBudget);
  EXPECT_TRUE(r.attempts.empty());
  EXPECT_EQ(p_.mock->bill().snapshot().requests_total, 0u);
}

TEST_F(ExchangeTest, RetriesWithBackoffThenFallsBack) {
  setMock(R"({"error_rate_500": 1})");
  auto s = send("bot", R"({"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"max_tokens":5})");
  EXPECT_EQ(s->status(), 0) << "waiting for a backoff timer";
  loop_.advance(1s);  // every backoff (<= 400 ms each) elapses
  // Both models fail: 3 attempts each (first + 2 retries), then 502.
  EXPECT_EQ(s->status(), 502) << s->body();
  EXPECT_EQ(s->header("x-sluice-attempts"), "6");
  auto r = lastRecord();
  EXPECT_EQ(r.outcome, store::Outcome::kUpstreamError);
  ASSERT_EQ(r.attempts.size(), 6u);
  EXPECT_EQ(r.attempts[0].model, "gpt-4.1");
  EXPECT_EQ(r.attempts[5].model, "gpt-4o-mini");
  EXPECT_EQ(r.cost_micro_usd, 0);
}

TEST_F(ExchangeTest, StreamStalledBeforeItsFirstTokenFallsBackUnseen) {
  setMock(R"({"stall_rate": 1, "stall_after_chunks": 1})");
  auto s = send("bot",
                R"({"model":"gpt-4.1","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":5})");
  EXPECT_FALSE(s->streaming()) << "nothing reached the client yet";
  loop_.advance(600ms);  // first-token deadline of the first attempt
  EXPECT_FALSE(s->streaming());
  setMock(R"({"stall_rate": 0})");
  loop_.advance(3s);
  ASSERT_TRUE(s->streaming());
  EXPECT_TRUE(s->ended());
  EXPECT_NE(s->body().find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(s->body().find("\"usage\""), std::string::npos) << "usage stripped for a client that did not ask";
  auto r = lastRecord();
  EXPECT_EQ(r.outcome, store::Outcome::kOk);
  EXPECT_EQ(r.attempts.front().error, "first_token_timeout");
  EXPECT_EQ(r.attempts.back().error, "");
}

TEST_F(ExchangeTest, StreamEndsWithTheCostOfEveryAttemptAsATrailer) {
  // The first attempt stalls after its role chunk and is billed; the fallback completes.
  setMock(R"({"stall_rate": 1, "stall_after_chunks": 1, "completion_tokens": 7})");
  auto s = send("bot",
                R"({"model":"gpt-4.1","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":20})");
  loop_.advance(600ms);
  setMock(R"({"stall_rate": 0})");
  loop_.advance(3s);
  ASSERT_TRUE(s->ended());
  EXPECT_EQ(s->header("trailer"), "x-sluice-cost-usd, server-timing");
  auto r = lastRecord();
  ASSERT_GE(r.attempts.size(), 2u);
  EXPECT_GT(r.cost_micro_usd, 0);
  EXPECT_EQ(s->trailer("x-sluice-cost-usd"), core::formatUsd(r.cost_micro_usd));
  EXPECT_NE(s->trailer("server-timing").find("upstream;dur="), std::string::npos);
}

TEST_F(ExchangeTest, ClientThatLeavesMidStreamIsBilledFromTheGatewaysCount) {
  setMock(R"({"tokens_per_second": 10, "completion_tokens": 50})");
  auto s = send("bot",
                R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":50})");
  loop_.advance(1s);
  ASSERT_TRUE(s->streaming());
  s->disconnect();
  auto r = lastRecord();
  EXPECT_EQ(r.outcome, store::Outcome::kClientAbort);
  EXPECT_EQ(r.usage_source, store::UsageSource::kCounted) << "gpt-4o-mini's tokenizer is known";
  EXPECT_GT(r.usage.output, 0);
  EXPECT_LT(r.usage.output, 50);
  EXPECT_GT(r.cost_micro_usd, 0);
}

TEST_F(ExchangeTest, ReservationIsReleasedWhenNothingWasBilled) {
  setMock(R"({"error_rate_500": 1})");
  send("bot", R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5})");
  loop_.advance(2s);
  loop_.runReady();
  EXPECT_EQ(gw_->budgets().outstandingReservations(), 0u);
}

// Cut after the 2xx headers: the provider already took the call (a
// non-stream answer is generated before its first byte), so the attempt is
// billed at the bound of what it can have cost, never at nothing.
TEST_F(ExchangeTest, NonStreamBodyCutAfterTheHeadersIsBilledAtTheOutputCap) {
  setMock(R"({"reset_mid_stream_rate": 1, "reset_after_chunks": 0, "completion_tokens": 3})");
  auto s = send("bot", R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5})");
  loop_.advance(2s);  // the retries' backoffs
  EXPECT_EQ(s->status(), 502) << s->body();
  auto r = lastRecord();
  ASSERT_EQ(r.attempts.size(), 3u);
  for (const auto& a : r.attempts) {
    EXPECT_EQ(a.error, "reset");
    EXPECT_EQ(a.usage_source, store::UsageSource::kEstimated);
    EXPECT_EQ(a.usage.output, 5) << "the cap sent upstream";
    EXPECT_GT(a.usage.input, 0);
    EXPECT_GT(a.cost_micro_usd, 0);
  }
  const auto bill = p_.mock->bill().snapshot();
  EXPECT_GE(r.usage.output, static_cast<int64_t>(bill.models.at("gpt-4o-mini").completion_tokens));
  EXPECT_GE(r.usage.input, static_cast<int64_t>(bill.models.at("gpt-4o-mini").prompt_tokens));
}

TEST_F(ExchangeTest, StreamCutBeforeItsFirstEventIsBilledItsPrompt) {
  setMock(R"({"reset_mid_stream_rate": 1, "reset_after_chunks": 0})");
  auto s = send("bot",
                R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":5})");
  loop_.advance(2s);
  auto r = lastRecord();
  ASSERT_FALSE(r.attempts.empty());
  for (const auto& a : r.attempts) {
    EXPECT_EQ(a.usage_source, store::UsageSource::kCounted) << a.error;
    EXPECT_GT(a.usage.input, 0);
    EXPECT_EQ(a.usage.output, 0);
  }
  const auto bill = p_.mock->bill().snapshot();
  EXPECT_GE(r.usage.input, static_cast<int64_t>(bill.models.at("gpt-4o-mini").prompt_tokens));
}

// A retry is another call the provider bills: after an attempt that was
// billed, the next one needs budget of its own. Here the budget covers one
// call at the cap: the first is cut after its headers (billed at the cap),
// and the retries are not made, instead of spending three times the budget.
TEST_F(ExchangeTest, NoRetryPastTheBudgetAfterABilledAttempt) {
  setMock(R"({"reset_mid_stream_rate": 1, "reset_after_chunks": 0})");
  auto s = send("tight", R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":8})");
  loop_.advance(2s);
  // The budget refused the retry: that is a budget answer (429, not
  // retryable), not an upstream failure (it was a 502 upstream_error).
  EXPECT_EQ(s->status(), 429) << s->body();
  EXPECT_EQ(s->header("x-should-retry"), "false");
  EXPECT_NE(s->body().find("insufficient_quota"), std::string::npos) << s->body();
  auto r = lastRecord();
  EXPECT_EQ(r.outcome, store::Outcome::kRejectedBudget);
  ASSERT_EQ(r.attempts.size(), 1u) << "the retries were not affordable";
  EXPECT_GT(r.cost_micro_usd, 0);
  EXPECT_LE(r.cost_micro_usd, 10) << "within usd_per_day";
  EXPECT_EQ(p_.mock->bill().snapshot().models.at("gpt-4o-mini").requests, 1u);
  EXPECT_EQ(gw_->budgets().outstandingReservations(), 0u);
  // The same faults with budget to spare: every retry is made, each billed.
  auto more = send("bot", R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":8})");
  loop_.advance(2s);
  auto r2 = lastRecord();
  EXPECT_EQ(r2.attempts.size(), 3u);
  EXPECT_EQ(gw_->budgets().outstandingReservations(), 0u);
}

// A usage sink whose log cannot be written (a full disk, say).
class ProblemSink final : public store::UsageSink {
 public:
  void submit(store::UsageRecord&&) override {}
  void flush() override {}
  [[nodiscard]] std::optional<std::string> problem() const override {
    std::lock_guard lk(mu);
    return problem_text;
  }
  mutable std::mutex mu;
  std::optional<std::string> problem_text;
};

TEST(GatewayProbes, ReadinessFollowsTheUsageLogAndDraining) {
  auto keys = store::openKeyStore("memory");
  ASSERT_TRUE(keys);
  auto sink = std::make_shared<ProblemSink>();
  core::ManualClock clock;
  FakeDispatcher loop{clock};
  auto gw = makeGateway(clock, std::move(*keys), sink);
  ASSERT_TRUE(gw);
  auto probe = [&](std::string path) {
    auto stream = std::make_shared<FakeServerStream>();
    gw->handler()(net::HttpRequest{"GET", std::move(path), {}, ""}, stream, loop);
    loop.runReady();
    return stream;
  };
  EXPECT_EQ(probe("/readyz")->status(), 200);
  {
    std::lock_guard lk(sink->mu);
    sink->problem_text = "writing the usage log failed: No space left on device";
  }
  auto failing = probe("/readyz");
  EXPECT_EQ(failing->status(), 503);
  EXPECT_EQ(failing->body(), R"({"status":"usage_log_failing"})");
  EXPECT_EQ(probe("/healthz")->status(), 200) << "alive, only not ready";
  {
    std::lock_guard lk(sink->mu);
    sink->problem_text.reset();
  }
  EXPECT_EQ(probe("/readyz")->status(), 200) << "ready again once the log is written";
  gw->setDraining();
  EXPECT_EQ(probe("/readyz")->body(), R"({"status":"draining"})");
}

}  // namespace
}  // namespace sluice::gateway
