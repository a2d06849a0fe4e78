#include "store/import.h"

#include <gtest/gtest.h>

#include "ledger_fixture.h"
#include "store/report.h"
#include "store/usage.h"

namespace sluice::store {
namespace {

std::optional<core::Price> catalog(std::string_view model) {
  if (model == "gpt-4.1") return core::Price{2'000'000, 500'000, 8'000'000};
  if (model == "deepseek-v3.2") return core::Price{280'000, 28'000, 420'000};
  return std::nullopt;
}

using testing::scalar;

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("l.db");
    auto db = SqliteDb::open(path_);
    ASSERT_TRUE(db);
    db_ = std::move(*db);
    ASSERT_TRUE(migrateLedger(*db_, path_));
  }
  ImportCounts import(std::string_view content, const std::string& source, bool dry_run = false) {
    const ParsedAuditFile f = parseAuditFile(content, catalog);
    auto c = importRows(
        *db_, f.rows, source, [](std::string_view a) { return a == "drafter" ? "gold" : ""; }, dry_run);
    EXPECT_TRUE(c) << c.error().message;
    return c ? *c : ImportCounts{};
  }
  testing::LedgerDir dir_;
  std::string path_;
  std::unique_ptr<SqliteDb> db_;
};

constexpr std::string_view kAuditor = R"({"summary": {"calls": 3},
 "entries": [
  {"timestamp": "2026-01-05T10:00:00.250", "agent_name": "drafter", "model": "gpt-4.1", "input_tokens": 1000,
   "output_tokens": 500, "total_tokens": 1500, "latency_ms": 1200, "finish_reason": "stop"},
  {"timestamp": 1767607200, "agent_name": "drafter", "model": "gpt-4.1", "input_tokens": 100, "output_tokens": 80,
   "total_tokens": 180, "latency_ms": 900, "finish_reason": "stop", "cost_usd": 0.00084},
  {"timestamp": 1767607260123, "agent_name": "coder", "model": "mystery", "total_tokens": 50, "latency_ms": 10}
 ]})";

TEST_F(ImportTest, ReadsTheEntriesFormPricingRowsWithoutACost) {
  const ParsedAuditFile f = parseAuditFile(kAuditor, catalog);
  EXPECT_EQ(f.format, "entries");
  ASSERT_EQ(f.rows.size(), 3u);
  EXPECT_TRUE(f.problems.empty());
  // 2026-01-05T10:00:00.250Z
  EXPECT_EQ(f.rows[0].started_unix_ms, 1'767'607'200'250);
  EXPECT_EQ(f.rows[0].latency_us, 1'200'000);
  EXPECT_EQ(f.rows[0].cost_source, "catalog");
  EXPECT_EQ(f.rows[0].cost_micro_usd, 2'000 + 4'000);  // 1000 × $2/M + 500 × $8/M
  EXPECT_EQ(f.rows[1].started_unix_ms, 1'767'607'200'000) << "epoch seconds";
  EXPECT_EQ(f.rows[1].cost_source, "file");
  EXPECT_EQ(f.rows[1].cost_micro_usd, 840);
  EXPECT_EQ(f.rows[2].started_unix_ms, 1'767'607'260'123) << "epoch milliseconds";
  EXPECT_EQ(f.rows[2].usage.input, 50) << "only a total: counted as input";
  EXPECT_EQ(f.rows[2].cost_source, "unpriced");
  EXPECT_EQ(f.rows[2].cost_micro_usd, 0);
}

TEST_F(ImportTest, ImportingTwiceAddsNothingAndDryRunsChangeNothing) {
  EXPECT_EQ(import(kAuditor, "audit.json", true).added, 3);
  EXPECT_EQ(scalar(*db_, "SELECT count(*) FROM requests"), 0);
  const ImportCounts first = import(kAuditor, "audit.json");
  EXPECT_EQ(first.added, 3);
  EXPECT_EQ(first.added_cost_micro_usd, 6'000 + 840);
  const ImportCounts again = import(kAuditor, "audit-copy.json");
  EXPECT_EQ(again.added, 0);
  EXPECT_EQ(again.already, 3);
  EXPECT_EQ(scalar(*db_, "SELECT count(*) FROM requests"), 3);
  EXPECT_EQ(scalar(*db_, "SELECT count(*) FROM attempts"), 3);
  EXPECT_EQ(scalar(*db_, "SELECT count(*) FROM requests WHERE source = 'audit.json'"), 3);
  // spend_by_minute holds exactly the rows' sums, with the config's tier.
  EXPECT_EQ(scalar(*db_, "SELECT sum(cost_micro_usd) FROM spend_by_minute"), 6'840);
  EXPECT_EQ(scalar(*db_, "SELECT sum(tokens) FROM spend_by_minute"), 1500 + 180 + 50);
  EXPECT_EQ(scalar(*db_, "SELECT sum(requests) FROM spend_by_minute"), 3);
  EXPECT_EQ(scalar(*db_, "SELECT count(*) FROM spend_by_minute WHERE agent = 'drafter' AND tier = 'gold'"), 1);
  EXPECT_EQ(scalar(*db_,
                   "SELECT count(*) FROM (SELECT minute, agent, tier, sum(s) FROM (SELECT started_unix_ms / 60000 AS"
                   " minute, agent, tier, cost_micro_usd AS s FROM requests) GROUP BY 1, 2, 3 EXCEPT SELECT minute,"
                   " agent, tier, cost_micro_usd FROM spend_by_minute)"),
            0);
}

TEST_F(ImportTest, ReportsBadLinesByNumberAndKeepsTheGoodOnes) {
  const std::string text =
      "{\"timestamp\":\"2026-01-06T00:00:00Z\",\"agent\":\"coder\",\"model\":\"deepseek-v3.2\","
      "\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":500}}\n"
      "not json\n"
      "\n"
      "{\"agent\":\"coder\",\"model\":\"gpt-4.1\",\"input_tokens\":1}\n"
      "{\"timestamp\":\"2026-13-01\",\"model\":\"gpt-4.1\",\"input_tokens\":1}\n"
      "{\"timestamp\":\"2026-01-06\",\"model\":\"gpt-4.1\",\"input_tokens\":\"many\"}\n"
      "{\"timestamp\":\"2026-01-06\",\"model\":\"gpt-4.1\"}\n"
      "[1, 2]\n"
      "{\"timestamp\":\"2026-01-06\",\"model\":\"gpt-4.1\",\"output_tokens\":10,\"cost\":-1}\n";
  const ParsedAuditFile f = parseAuditFile(text, catalog);
  ASSERT_EQ(f.rows.size(), 1u);
  EXPECT_EQ(f.rows[0].line, 1);
  EXPECT_EQ(f.rows[0].cost_micro_usd, 490);  // 1000 × 0.28 + 500 × 0.42 = 280 + 210
  std::vector<int64_t> bad;
  for (const auto& p : f.problems) bad.push_back(p.line);
  EXPECT_EQ(bad, (std::vector<int64_t>{2, 4, 5, 6, 7, 8, 9}));
  EXPECT_NE(f.problems[0].message.find("line 2: not valid JSON"), std::string::npos);
  EXPECT_NE(f.problems[1].message.find("no timestamp"), std::string::npos);
  EXPECT_NE(f.problems[3].message.find("'input_tokens' is not a number"), std::string::npos);
}

TEST_F(ImportTest, SluiceUsageRecordsComeBackAsTheyWere) {
  UsageRecord r = testing::call("drafter", "gpt-4.1", testing::kJan1, 250, {.input = 10, .cached = 2, .output = 5}, 123,
                                2);
  r.request_id = "req_abc";
  r.requested_model = "gpt-4o";
  r.stream = true;
  r.ttft_us = 90'000;
  r.run_id = "run-1";
  const std::string text = toJsonLine(r) + "\n" + toJsonLine(r) + "\n";
  const ParsedAuditFile f = parseAuditFile(text, catalog);
  EXPECT_EQ(f.format, "sluice-jsonl");
  ASSERT_EQ(f.rows.size(), 2u);
  const ImportCounts c = import(text, "usage.jsonl");
  EXPECT_EQ(c.added, 1) << "the same request id twice";
  EXPECT_EQ(scalar(*db_, "SELECT count(*) FROM attempts"), 2);
  auto st = db_->prepare(
      "SELECT request_id, requested_model, served_model, cost_micro_usd, usage_source, ttft_us, stream, run_id,"
      " billed_attempts, cost_source, tier FROM requests");
  ASSERT_TRUE(st);
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->text(0), "req_abc");
  EXPECT_EQ(st->text(1), "gpt-4o");
  EXPECT_EQ(st->text(2), "gpt-4.1");
  EXPECT_EQ(st->int64(3), 123);
  EXPECT_EQ(st->text(4), "provider");
  EXPECT_EQ(st->int64(5), 90'000);
  EXPECT_EQ(st->int64(6), 1);
  EXPECT_EQ(st->text(7), "run-1");
  EXPECT_EQ(st->int64(8), 1);
  EXPECT_EQ(st->text(9), "file");
  EXPECT_EQ(st->text(10), "standard") << "the record's own tier";
}

}  // namespace
}  // namespace sluice::store
