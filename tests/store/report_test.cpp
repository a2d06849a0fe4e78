#include "store/report.h"

#include <gtest/gtest.h>

#include "ledger_fixture.h"

namespace sluice::store {
namespace {

using testing::call;
using testing::kJan1;
using testing::rejected;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

// By hand: drafter on gpt-4.1, latencies 100..1000 ms (ten calls, 10 input
// and 5 output tokens and 100 µUSD each), one of them retried once; a
// fallback; a stream; rejections; a client abort; a counted usage.
std::vector<UsageRecord> fixture() {
  std::vector<UsageRecord> v;
  for (int i = 1; i <= 10; ++i) {
    v.push_back(call("drafter", "gpt-4.1", kJan1 + i * 1000, i * 100, {.input = 10, .cached = 2, .output = 5}, 100,
                     i == 3 ? 2 : 1));
  }
  UsageRecord fb = call("reviewer", "gpt-4.1", kJan1 + kDay + 5, 2000, {.input = 100, .output = 50, .reasoning = 7},
                        900);
  fb.attempts.insert(fb.attempts.begin(),
                     Attempt{.model = "gpt-4o", .provider = "openai", .http_status = 503, .error = "http_503"});
  fb.requested_model = "gpt-4o";
  fb.stream = true;
  fb.ttft_us = 300'000;
  fb.usage_source = UsageSource::kCounted;
  v.push_back(fb);
  UsageRecord abort = call("reviewer", "gpt-4o", kJan1 + kDay + 10, 50, {.input = 7, .output = 1}, 40);
  abort.outcome = Outcome::kClientAbort;
  v.push_back(abort);
  v.push_back(rejected("reviewer", "gpt-4o", kJan1 + kDay + 20, Outcome::kRejectedBudget));
  v.push_back(rejected("reviewer", "gpt-4o", kJan1 + kDay + 30, Outcome::kRejectedBudget));
  v.push_back(rejected("drafter", "gpt-4.1", kJan1 + 40, Outcome::kRejectedRate));
  return v;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("l.db");
    testing::writeLedger(path_, fixture());
    auto db = openLedgerToRead(path_);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
  }
  Report run(const LedgerFilter& f, std::vector<ReportKey> by) {
    auto r = buildReport(*db_, f, by, core::Calendar::utc());
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : Report{};
  }
  testing::LedgerDir dir_;
  std::string path_;
  std::unique_ptr<SqliteDb> db_;
};

TEST(NearestRank, IsTheSmallestValueWithPPercentAtOrBelowIt) {
  std::vector<int64_t> v{5, 1, 4, 2, 3};
  EXPECT_EQ(nearestRank(v, 50), 3);  // ceil(2.5) = 3rd
  EXPECT_EQ(nearestRank(v, 95), 5);  // ceil(4.75) = 5th
  EXPECT_EQ(nearestRank(v, 1), 1);
  std::vector<int64_t> none;
  EXPECT_EQ(nearestRank(none, 50), -1);
}

TEST_F(ReportTest, TotalsAreTheSumsOfEveryRow) {
  const Report r = run({}, {});
  EXPECT_TRUE(r.groups.empty() || r.groups.size() == 1);
  const ReportRow& t = r.total;
  EXPECT_EQ(t.calls, 15);
  EXPECT_EQ(t.usage.input, 10 * 10 + 100 + 7);
  EXPECT_EQ(t.usage.cached, 20);
  EXPECT_EQ(t.usage.output, 50 + 50 + 1);
  EXPECT_EQ(t.usage.reasoning, 7);
  EXPECT_EQ(t.cost_micro_usd, 1000 + 900 + 40);
  EXPECT_EQ(t.rejected, 3);
  EXPECT_EQ(t.rejections.at("budget"), 2);
  EXPECT_EQ(t.rejections.at("rate"), 1);
  EXPECT_EQ(t.retries, 2);    // drafter's third call, the reviewer's fallback
  EXPECT_EQ(t.fallbacks, 1);  // gpt-4o failed, gpt-4.1 served
  EXPECT_EQ(t.client_aborts, 1);
  EXPECT_EQ(t.not_provider_usage, 1);
  // Latencies of the 12 requests not rejected: 50, 100..1000, 2000 ms.
  EXPECT_EQ(t.latency_p50_us, 500'000);    // 6th of 12
  EXPECT_EQ(t.latency_p95_us, 2'000'000);  // 12th (ceil 11.4)
  EXPECT_EQ(t.latency_p99_us, 2'000'000);
  EXPECT_EQ(t.ttft_p50_us, 300'000);
}

TEST_F(ReportTest, GroupsByAgentAndModelWithExactPercentiles) {
  const Report r = run({}, {ReportKey::kAgent, ReportKey::kModel});
  ASSERT_EQ(r.groups.size(), 2u);  // by the requested model: the fallback asked for gpt-4o
  EXPECT_EQ(r.groups[0].key, (std::vector<std::string>{"drafter", "gpt-4.1"}));
  EXPECT_EQ(r.groups[0].calls, 11);
  EXPECT_EQ(r.groups[0].latency_p50_us, 500'000);  // 5th of 10
  EXPECT_EQ(r.groups[0].latency_p95_us, 1'000'000);
  EXPECT_EQ(r.groups[0].latency_p99_us, 1'000'000);
  EXPECT_EQ(r.groups[0].ttft_p50_us, -1);
  EXPECT_EQ(r.groups[0].retries, 1);
  EXPECT_EQ(r.groups[1].key, (std::vector<std::string>{"reviewer", "gpt-4o"}));
  EXPECT_EQ(r.groups[1].calls, 4);
  EXPECT_EQ(r.groups[1].cost_micro_usd, 940);
  EXPECT_EQ(r.groups[1].rejections.at("budget"), 2);
  EXPECT_EQ(r.groups[1].latency_p50_us, 50'000);  // 1st of 2 (50 ms, 2000 ms)
}

TEST_F(ReportTest, GroupsByServedModelAndDay) {
  const Report r = run({}, {ReportKey::kServedModel, ReportKey::kDay});
  ASSERT_EQ(r.groups.size(), 3u);
  EXPECT_EQ(r.groups[0].key, (std::vector<std::string>{"gpt-4.1", "2026-01-01"}));
  EXPECT_EQ(r.groups[0].calls, 11);
  EXPECT_EQ(r.groups[1].key, (std::vector<std::string>{"gpt-4.1", "2026-01-02"}));
  EXPECT_EQ(r.groups[1].calls, 1);
  EXPECT_EQ(r.groups[1].fallbacks, 1);
  EXPECT_EQ(r.groups[2].key, (std::vector<std::string>{"gpt-4o", "2026-01-02"}));
  EXPECT_EQ(r.groups[2].calls, 3);
  // In Tokyo (UTC+9) the first day's calls are on the 1st, the second's on the 2nd too (09:00).
  auto tokyo = core::Calendar::create("Asia/Tokyo");
  ASSERT_TRUE(tokyo);
  auto t = buildReport(*db_, {}, {ReportKey::kDay}, *tokyo);
  ASSERT_TRUE(t);
  ASSERT_EQ(t->groups.size(), 2u);
  EXPECT_EQ(t->groups[0].key[0], "2026-01-01");
}

TEST_F(ReportTest, FiltersByTimeAgentModelAndRun) {
  EXPECT_EQ(run({.since_ms = kJan1 + kDay}, {}).total.calls, 4);
  EXPECT_EQ(run({.until_ms = kJan1 + kDay}, {}).total.calls, 11);
  EXPECT_EQ(run({.since_ms = kJan1 + 2000, .until_ms = kJan1 + 4000}, {}).total.calls, 2);
  EXPECT_EQ(run({.agents = {"reviewer"}}, {}).total.calls, 4);
  // Asked for or served by gpt-4o: the reviewer's four.
  EXPECT_EQ(run({.models = {"gpt-4o"}}, {}).total.calls, 4);
  EXPECT_EQ(run({.agents = {"drafter"}, .models = {"gpt-4o"}}, {}).total.calls, 0);
  EXPECT_EQ(run({.runs = {"nope"}}, {}).total.calls, 0);
  const Report none = run({.agents = {"nobody"}}, {ReportKey::kAgent});
  EXPECT_TRUE(none.groups.empty());
  EXPECT_EQ(none.total.latency_p50_us, -1);
}

TEST(ReportOpen, RefusesAMissingFile) {
  auto db = openLedgerToRead("/nonexistent/ledger.db");
  ASSERT_FALSE(db);
  EXPECT_NE(db.error().message.find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace sluice::store
