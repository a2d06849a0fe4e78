// report, export, import and roi as the CLI runs them, on small ledgers
// written in the test through the store API; figures computed by hand.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "store/ledger.h"
#include "store/sqlite_db.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

class Dir {
 public:
  Dir() {
    static std::atomic<int> n{0};
    path_ = fs::temp_directory_path() / ("sluice_cli_ledger_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~Dir() { fs::remove_all(path_); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

store::UsageRecord record(std::string id, std::string agent, std::string model, int64_t started, int64_t latency_ms,
                          core::TokenUsage usage, core::MicroUsd cost) {
  store::UsageRecord r;
  r.request_id = std::move(id);
  r.started_unix_ms = started;
  r.finished_unix_ms = started + latency_ms;
  r.endpoint = "chat.completions";
  r.agent = std::move(agent);
  r.requested_model = model;
  r.served_model = model;
  r.provider = "openai";
  r.attempts.push_back(store::Attempt{.model = model,
                                      .provider = "openai",
                                      .http_status = 200,
                                      .usage = usage,
                                      .cost_micro_usd = cost,
                                      .usage_source = store::UsageSource::kProvider,
                                      .latency_us = latency_ms * 1000});
  r.http_status = 200;
  r.usage = usage;
  r.cost_micro_usd = cost;
  r.usage_source = store::UsageSource::kProvider;
  r.latency_us = latency_ms * 1000;
  return r;
}

void write(const std::string& path, std::vector<store::UsageRecord> records) {
  auto sink = store::openLedgerSink(path);
  ASSERT_TRUE(sink) << sink.error().message;
  for (auto& r : records) (*sink)->submit(std::move(r));
  (*sink)->flush();
}

template <class F>
std::pair<int, std::string> capture(F&& f) {
  ::testing::internal::CaptureStdout();
  const int rc = f();
  std::fflush(stdout);
  return {rc, ::testing::internal::GetCapturedStdout()};
}

// 2026-01-01T00:00:00Z
constexpr int64_t kJan1 = 1'767'225'600'000;

TEST(ReportCommand, CsvFiguresAsComputedByHand) {
  Dir dir;
  const std::string db = dir.file("l.db");
  write(db, {record("a", "drafter", "gpt-4.1", kJan1, 100, {.input = 1000, .output = 500}, 6000),
             record("b", "drafter", "gpt-4.1", kJan1 + 1000, 300, {.input = 2000, .cached = 1000, .output = 0}, 2500),
             record("c", "coder", "gpt-4o", kJan1 + 86'400'000, 200, {.input = 10, .output = 10}, 125)});
  ReportOptions o;
  o.source.ledger = "sqlite:" + db;
  o.by = {"agent", "day"};
  o.format = "csv";
  auto [rc, out] = capture([&] { return reportCommand(o); });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out,
            "agent,day,calls,input_tokens,cached_tokens,output_tokens,reasoning_tokens,cost_usd,latency_p50_ms,"
            "latency_p95_ms,latency_p99_ms,ttft_p50_ms,rejected,retries,fallbacks,upstream_errors,client_aborts,"
            "not_provider_usage\n"
            "coder,2026-01-02,1,10,0,10,0,0.000125,200.0,200.0,200.0,-,0,0,0,0,0,0\n"
            "drafter,2026-01-01,2,3000,1000,500,0,0.008500,100.0,300.0,300.0,-,0,0,0,0,0,0\n"
            "TOTAL,,3,3010,1000,510,0,0.008625,200.0,300.0,300.0,-,0,0,0,0,0,0\n");
  o.format = "table";
  o.filter.until = "2026-01-02";
  auto [rc2, table] = capture([&] { return reportCommand(o); });
  EXPECT_EQ(rc2, 0);
  EXPECT_NE(table.find("drafter  2026-01-01"), std::string::npos) << table;
  EXPECT_EQ(table.find("coder"), std::string::npos) << table;
  EXPECT_NE(table.find("$0.0085"), std::string::npos) << table;
  o.filter.until = "yesterday-ish";
  EXPECT_EQ(reportCommand(o), 2);
  o.source.ledger = "sqlite:" + dir.file("missing.db");
  o.filter.until.clear();
  EXPECT_EQ(reportCommand(o), 1);
  EXPECT_FALSE(fs::exists(dir.file("missing.db"))) << "a report never creates a ledger";
}

// The check by hand: 180 million output tokens a month at gpt-4.1's $8.00
// per million is $1,440.00; mapped to deepseek-v3.2 at $0.42 it is $75.60,
// a saving of $1,364.40 (94.75 %).
TEST(RoiCommand, TheCheckByHand) {
  Dir dir;
  const std::string db = dir.file("l.db");
  const int64_t now = nowMs();
  write(db, {record("a", "drafter", "gpt-4.1", now - 10 * 86'400'000LL, 1000, {.output = 100'000'000}, 800'000'000),
             record("b", "drafter", "gpt-4.1", now - 86'400'000LL, 1000, {.output = 80'000'000}, 640'000'000),
             record("c", "drafter", "gpt-4o-mini", now - 86'400'000LL, 10, {.output = 1'000'000}, 600'000)});
  RoiOptions o;
  o.source.ledger = "sqlite:" + db;
  o.maps = {"gpt-4.1=deepseek-v3.2"};
  o.explain = true;
  auto [rc, out] = capture([&] { return roiCommand(o); });
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("drafter  gpt-4.1      deepseek-v3.2         2  $1,440.00     $75.60  $1,364.40   94.75 %"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("$1,364.40 = 1,364,400,000 µUSD × 30 d / 30 d"), std::string::npos) << out;
  EXPECT_NE(out.find("ceil((0 uncached input × 280,000 + 0 cached × 28,000 + 180,000,000 output × 420,000) / 10^6)"),
            std::string::npos)
      << out;
  // Unmapped traffic stays as it is.
  EXPECT_NE(out.find("gpt-4o-mini  -"), std::string::npos) << out;
  // Over 15 days the monthly figure doubles.
  o.filter.since = "15d";
  o.explain = false;
  auto [rc2, half] = capture([&] { return roiCommand(o); });
  EXPECT_EQ(rc2, 0);
  // Both gpt-4.1 requests lie within 15 days: $1,364.40 × 30 d / 15 d.
  EXPECT_NE(half.find("$2,728.80"), std::string::npos) << half;
  o.maps = {"gpt-4.1"};
  EXPECT_EQ(roiCommand(o), 2);
  o.maps = {"gpt-4.1=nonexistent-model"};
  EXPECT_EQ(roiCommand(o), 2);
}

TEST(RoiCommand, RealisedSavingsOfSubstitutedTraffic) {
  Dir dir;
  const std::string db = dir.file("l.db");
  store::UsageRecord r = record("s", "drafter", "deepseek-v3.2", nowMs() - 3'600'000, 500, {.output = 1'000'000},
                                420'000);
  r.requested_model = "gpt-4.1";  // substituted: asked for gpt-4.1, served by deepseek-v3.2
  write(db, {r});
  RoiOptions o;
  o.source.ledger = "sqlite:" + db;
  o.maps = {"gpt-4o=gpt-4o-mini"};
  auto [rc, out] = capture([&] { return roiCommand(o); });
  ASSERT_EQ(rc, 0) << out;
  // 1M output tokens: $8.00 at gpt-4.1, $0.42 served: $7.58 realised (94.75 %).
  const std::string realised = out.substr(out.find("Savings already realised"));
  EXPECT_NE(realised.find("drafter  gpt-4.1    deepseek-v3.2"), std::string::npos) << out;
  for (const char* figure : {"$8.00", "$0.42", "$7.58", "94.75 %"}) {
    EXPECT_NE(realised.find(figure), std::string::npos) << figure << "\n" << out;
  }
}

TEST(ExportAndImport, ExportStreamsEveryRowAndImportReadsItBack) {
  Dir dir;
  const std::string db = dir.file("l.db");
  write(db, {record("a", "drafter", "gpt-4.1", kJan1, 100, {.input = 1000, .output = 500}, 6000),
             record("b", "coder", "gpt-4o", kJan1 + 1000, 300, {.input = 20, .output = 0}, 50)});
  ExportOptions e;
  e.source.ledger = "sqlite:" + db;
  e.format = "csv";
  auto [rc, csv] = capture([&] { return exportCommand(e); });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  EXPECT_TRUE(csv.starts_with("id,request_id,started_unix_ms,")) << csv;
  EXPECT_NE(csv.find(",source,cost_source\n"), std::string::npos) << csv;
  e.format = "jsonl";
  e.filter.agents = {"drafter"};
  auto [rc2, jsonl] = capture([&] { return exportCommand(e); });
  EXPECT_EQ(rc2, 0);
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 1);
  EXPECT_NE(jsonl.find("\"attempts\":[{\"model\":\"gpt-4.1\""), std::string::npos) << jsonl;
  // Into another ledger: added once, then not again; into the same: nothing.
  const std::string file = dir.file("export.jsonl");
  std::ofstream(file) << jsonl << "{broken\n";
  ImportOptions i;
  i.source.ledger = "sqlite:" + dir.file("other.db");
  i.files = {file};
  auto [rc3, first] = capture([&] { return importCommand(i); });
  EXPECT_EQ(rc3, 1) << "a bad line makes the exit status 1";
  EXPECT_NE(first.find("1 added, 0 already imported, 1 bad"), std::string::npos) << first;
  auto [rc4, second] = capture([&] { return importCommand(i); });
  EXPECT_NE(second.find("0 added, 1 already imported"), std::string::npos) << second;
  i.source.ledger = "sqlite:" + db;
  i.dry_run = true;
  auto [rc5, same] = capture([&] { return importCommand(i); });
  EXPECT_NE(same.find("0 would be added, 1 already imported"), std::string::npos) << same;
}

}  // namespace
}  // namespace sluice::cli
