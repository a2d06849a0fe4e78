// Exact counts where money depends on them (issue 14, item 3): a call whose
// bound does not fit a budget or a TPM limit but whose exact count does is
// admitted; a stream Sluice bills by its own count is counted with the
// model's tokenizer. gpt-4o-mini's encoding (o200k_base) comes from the
// price catalog; the row's prices make a token cost 1 and 2 µUSD.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/money.h"
#include "core/token_estimate.h"
#include "gateway/pipeline.h"
#include "tokenizer/registry.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

// ~200 words of English prose: the bound counts it about 1.5x.
std::string prose() {
  std::string out;
  for (int i = 0; i < 20; ++i) {
    out += "The support agent reads the customer's message, finds the order and drafts a short, polite answer. ";
  }
  return out;
}

const tokenizer::Encoding& o200k() {
  auto e = tokenizer::sharedEncoding("o200k_base");
  EXPECT_TRUE(e) << e.error();
  return **e;
}

// The exact prompt of one user message: 3 per message + role + text + 3 priming.
int64_t exactPrompt(std::string_view text) { return 3 + 1 + static_cast<int64_t>(o200k().count(text)) + 3; }

std::string config(std::string_view agent_limits, std::string_view model = "gpt-4o-mini") {
  return fmt::format(R"(
providers:
  demo: {{kind: mock}}
models:
  {}: {{provider: demo, input: 1, output: 2}}
  plain: {{provider: demo, input: 1, output: 2}}
budgets:
  on_short_budget: reject
agents:
  a: {{{}}}
)",
                     model, agent_limits);
}

std::string call(std::string_view model, const std::string& text, int max_tokens, bool stream = false) {
  return fmt::format(R"({{"model":"{}","messages":[{{"role":"user","content":"{}"}}],"max_tokens":{}{}}})", model, text,
                     max_tokens, stream ? R"(,"stream":true)" : "");
}

TEST(ExactCounts, TheBoundIsWellAboveTheExactCountOfThisPrompt) {
  const std::string text = prose();
  const int64_t bound = core::estimateTextTokens(text);
  const int64_t exact = static_cast<int64_t>(o200k().count(text));
  EXPECT_GT(bound, exact + exact / 4) << "the tests below need the bound to be clearly above";
}

// Under `limits` the call fits by its exact count but not by its bound: a
// model with a known encoding is served, the same call to one without is
// refused (the bound decides there).
void expectAdmittedOnlyByItsExactCount(const std::string& limits, const std::string& text) {
  testing::Pipeline p;
  ASSERT_TRUE(p.start(config(limits), {"a"}));
  p.setMock(R"({"completion_tokens": 10})");
  auto s = p.send("a", call("gpt-4o-mini", text, 10));
  p.loop.advance(1s);
  EXPECT_EQ(s->status(), 200) << s->body();
  testing::Pipeline q;
  ASSERT_TRUE(q.start(config(limits), {"a"}));
  auto t = q.send("a", call("plain", text, 10));
  EXPECT_EQ(t->status(), 429) << t->body();
}

TEST(ExactCounts, ACallThatFitsTheBudgetByItsExactCountIsAdmitted) {
  const std::string text = prose();
  const int64_t need = exactPrompt(text) + 2 * 10;  // µUSD: prompt at 1, 10 output tokens at 2
  expectAdmittedOnlyByItsExactCount("usd_per_day: " + core::formatUsd(need + 2), text);
}

TEST(ExactCounts, ACallThatFitsTheTpmByItsExactCountIsAdmitted) {
  const std::string text = prose();
  const int64_t need = exactPrompt(text) + 10;
  expectAdmittedOnlyByItsExactCount(fmt::format("tpm: {}", need + 2), text);
}

TEST(ExactCounts, ACallThatDoesNotFitByItsExactCountIsStillRefused) {
  const std::string text = prose();
  const int64_t need = exactPrompt(text) + 2 * 10;
  testing::Pipeline p;
  ASSERT_TRUE(p.start(config("usd_per_day: " + core::formatUsd(need - 1)), {"a"}));
  auto s = p.send("a", call("gpt-4o-mini", text, 10));
  EXPECT_EQ(s->status(), 429) << s->body();
  EXPECT_EQ(p.mock->bill().snapshot().requests_total, 0u);
}

TEST(ExactCounts, AStreamCutByTheClientIsBilledByTheExactCountOfWhatItRelayed) {
  testing::Pipeline p;
  ASSERT_TRUE(p.start(config(""), {"a"}));
  p.setMock(R"({"tokens_per_second": 20, "completion_tokens": 100, "tokens_per_chunk": 1})");
  const std::string text = prose();
  auto s = p.send("a", call("gpt-4o-mini", text, 100, /*stream=*/true));
  p.loop.advance(1s);
  ASSERT_TRUE(s->streaming());
  s->disconnect();
  const store::UsageRecord r = p.lastRecord();
  EXPECT_EQ(r.usage_source, store::UsageSource::kCounted);
  EXPECT_EQ(r.usage.input, exactPrompt(text));
  // The relayed text, counted piece by piece as the provider sent it.
  int64_t relayed = 0;
  std::string_view body = s->body();
  for (size_t at = body.find("\"content\":\""); at != std::string_view::npos;
       at = body.find("\"content\":\"", at + 1)) {
    const size_t begin = at + 11;
    const size_t end = body.find('"', begin);
    relayed += static_cast<int64_t>(o200k().count(body.substr(begin, end - begin)));
  }
  EXPECT_GT(relayed, 0);
  EXPECT_EQ(r.usage.output, relayed);
}

// The client leaves after the request went upstream and before any byte of
// the answer: the provider may have read (and billed) the prompt, so the
// prompt is billed, counted exactly, and no output.
TEST(ExactCounts, AClientThatLeavesBeforeTheAnswerIsBilledThePromptItSent) {
  for (const bool stream : {false, true}) {
    testing::Pipeline p;
    ASSERT_TRUE(p.start(config(""), {"a"}));
    p.setMock(R"({"latency_ms": 2000, "completion_tokens": 10})");
    const std::string text = prose();
    auto s = p.send("a", call("gpt-4o-mini", text, 10, stream));
    p.loop.advance(100ms);
    ASSERT_EQ(s->status(), 0) << "no answer yet";
    s->disconnect();
    const store::UsageRecord r = p.lastRecord();
    EXPECT_EQ(r.outcome, store::Outcome::kClientAbort);
    ASSERT_EQ(r.attempts.size(), 1U);
    EXPECT_EQ(r.attempts[0].error, "client_abort");
    EXPECT_EQ(r.usage_source, store::UsageSource::kCounted) << stream;
    EXPECT_EQ(r.usage.input, exactPrompt(text)) << stream;
    EXPECT_EQ(r.usage.output, 0) << stream;
    EXPECT_EQ(r.cost_micro_usd, exactPrompt(text)) << stream;
  }
}

}  // namespace
}  // namespace sluice::gateway
