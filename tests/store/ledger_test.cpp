#include "store/ledger.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "ledger_fixture.h"
#include "store/sqlite_db.h"

namespace sluice::store {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed after.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path_ = fs::temp_directory_path() / ("sluice_ledger_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

UsageRecord sample(int i, int attempts = 1) {
  UsageRecord r;
  r.request_id = "req_" + std::to_string(i);
  r.started_unix_ms = 1'767'225'600'000 + i;
  r.finished_unix_ms = r.started_unix_ms + 50;
  r.endpoint = "chat.completions";
  r.agent = "drafter";
  r.key_id = "k1";
  r.tier = "standard";
  r.requested_model = "gpt-4o-mini";
  r.served_model = "gpt-4o-mini";
  r.provider = "openai";
  r.config_version = "abc";
  for (int k = 0; k < attempts; ++k) {
    Attempt a{.model = "gpt-4o-mini", .provider = "openai", .http_status = k + 1 == attempts ? 200 : 503};
    if (k + 1 == attempts) {
      a.usage = {.input = 10, .cached = 2, .output = 5, .reasoning = 1};
      a.cost_micro_usd = 123;
      a.usage_source = UsageSource::kProvider;
    } else {
      a.error = "http_503";
    }
    r.attempts.push_back(a);
  }
  r.http_status = 200;
  r.usage = {.input = 10, .cached = 2, .output = 5, .reasoning = 1};
  r.cost_micro_usd = 123;
  r.usage_source = UsageSource::kProvider;
  r.latency_us = 1000;
  r.stream = i % 2 == 0;
  r.finish_reason = "stop";
  return r;
}

using testing::scalar;

std::unique_ptr<SqliteDb> openDb(const std::string& path) {
  auto db = SqliteDb::open(path);
  EXPECT_TRUE(db);
  return db ? std::move(*db) : nullptr;
}

struct Reports {
  std::mutex mu;
  std::vector<std::pair<bool, std::string>> got;
  std::function<void(bool, const std::string&)> fn() {
    return [this](bool failing, const std::string& m) {
      std::lock_guard lk(mu);
      got.emplace_back(failing, m);
    };
  }
  std::vector<std::pair<bool, std::string>> all() {
    std::lock_guard lk(mu);
    return got;
  }
};

TEST(Ledger, CreatesTheSchemaAtTheCurrentVersion) {
  TempDir dir;
  const auto path = dir.file("l.db");
  {
    auto sink = openLedgerSink(path);
    ASSERT_TRUE(sink) << sink.error().message;
  }
  auto db = openDb(path);
  auto v = ledgerSchemaVersion(*db);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, kLedgerSchemaVersion);
  for (const char* index : {"requests_by_time", "requests_by_run", "requests_imported"}) {
    EXPECT_EQ(scalar(*db,
                     std::string("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '") + index + "'"),
              1)
        << index;
  }
  // v5 dropped the per-agent and per-model indexes (writer cost).
  for (const char* index : {"requests_by_agent", "requests_by_model"}) {
    EXPECT_EQ(scalar(*db,
                     std::string("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '") + index + "'"),
              0)
        << index;
  }
  // Opening again changes nothing.
  auto again = openLedgerSink(path);
  ASSERT_TRUE(again);
}

TEST(Ledger, WritesEveryRecordWithItsAttempts) {
  TempDir dir;
  const auto path = dir.file("l.db");
  {
    auto sink = openLedgerSink(path);
    ASSERT_TRUE(sink);
    for (int i = 0; i < 100; ++i) (*sink)->submit(sample(i, 1 + i % 3));
    UsageRecord odd = sample(1000);
    odd.agent = "it's \"quoted\"\n";
    odd.run_id = std::string("r\0n\xff", 4);  // bytes kept as given
    odd.outcome = Outcome::kRejectedBudget;
    odd.attempts.clear();
    (*sink)->submitCopy(odd);
    (*sink)->flush();
    EXPECT_FALSE((*sink)->problem());
  }
  auto db = openDb(path);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM requests"), 101);
  // 1 + 2 + 3 attempts in turn: 33 × 6 + 1.
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM attempts"), 33 * 6 + 1);
  EXPECT_EQ(scalar(*db, "SELECT sum(cost_micro_usd) FROM requests"), 101 * 123);
  EXPECT_EQ(scalar(*db, "SELECT sum(billed_attempts) FROM requests"), 100)
      << "one billed attempt each, none for the rejection";
  auto st = db->prepare(
      "SELECT request_id, agent, run_id, outcome, usage_source, stream, input_tokens, cached_tokens, output_tokens,"
      " reasoning_tokens FROM requests ORDER BY id");
  ASSERT_TRUE(st);
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->text(0), "req_0");
  EXPECT_EQ(st->text(1), "drafter");
  EXPECT_EQ(st->text(3), "ok");
  EXPECT_EQ(st->text(4), "provider");
  EXPECT_EQ(st->int64(5), 1);
  EXPECT_EQ(st->int64(6), 10);
  EXPECT_EQ(st->int64(7), 2);
  EXPECT_EQ(st->int64(8), 5);
  EXPECT_EQ(st->int64(9), 1);
  for (int i = 1; i < 101; ++i) ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->text(0), "req_1000");
  EXPECT_EQ(st->text(1), "it's \"quoted\"\n");
  EXPECT_EQ(st->text(2), std::string("r\0n\xff", 4));
  EXPECT_EQ(st->text(3), "rejected_budget");
  auto at = db->prepare(
      "SELECT a.attempt, a.http_status, a.error, a.cost_micro_usd FROM attempts a JOIN requests r ON a.request = r.id"
      " WHERE r.request_id = 'req_2' ORDER BY a.attempt");
  ASSERT_TRUE(at);
  ASSERT_TRUE(*at->step());
  EXPECT_EQ(at->int64(0), 0);
  EXPECT_EQ(at->int64(1), 503);
  EXPECT_EQ(at->text(2), "http_503");
  ASSERT_TRUE(*at->step());
  ASSERT_TRUE(*at->step());
  EXPECT_EQ(at->int64(0), 2);
  EXPECT_EQ(at->int64(1), 200);
  EXPECT_EQ(at->int64(3), 123);
  EXPECT_FALSE(*at->step());
}

// Version 1, as it was released: requests and attempts without
// billed_attempts, no run index.
constexpr const char* kSchemaV1 =
    "CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO ledger_meta VALUES ('schema_version', 1);"
    "CREATE TABLE requests ("
    " id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, started_unix_ms INTEGER NOT NULL,"
    " finished_unix_ms INTEGER NOT NULL, endpoint TEXT NOT NULL, agent TEXT NOT NULL, key_id TEXT NOT NULL,"
    " run_id TEXT NOT NULL, tier TEXT NOT NULL, requested_model TEXT NOT NULL, served_model TEXT NOT NULL,"
    " provider TEXT NOT NULL, config_version TEXT NOT NULL, http_status INTEGER NOT NULL, outcome TEXT NOT NULL,"
    " error_code TEXT NOT NULL, input_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,"
    " output_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, cost_micro_usd INTEGER NOT NULL,"
    " usage_source TEXT NOT NULL, latency_us INTEGER NOT NULL, ttft_us INTEGER NOT NULL, gateway_us INTEGER NOT NULL,"
    " stream INTEGER NOT NULL, finish_reason TEXT NOT NULL, client_retry_count INTEGER NOT NULL);"
    "CREATE TABLE attempts ("
    " request INTEGER NOT NULL REFERENCES requests(id), attempt INTEGER NOT NULL,"
    " model TEXT NOT NULL, provider TEXT NOT NULL, http_status INTEGER NOT NULL, error TEXT NOT NULL,"
    " input_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
    " reasoning_tokens INTEGER NOT NULL, cost_micro_usd INTEGER NOT NULL, usage_source TEXT NOT NULL,"
    " latency_us INTEGER NOT NULL, PRIMARY KEY (request, attempt)) WITHOUT ROWID;"
    "CREATE INDEX requests_by_time ON requests(started_unix_ms);"
    "CREATE INDEX requests_by_agent ON requests(agent, started_unix_ms);"
    "CREATE INDEX requests_by_model ON requests(served_model, started_unix_ms);"
    // Request 1: a failed unbilled attempt, then a billed one. Request 2: a
    // rejection, no attempt.
    "INSERT INTO requests VALUES (1, 'old_1', 1000, 1100, 'chat.completions', 'a', 'k', '', 't', 'm', 'm', 'p', 'v',"
    " 200, 'ok', '', 10, 0, 5, 0, 77, 'provider', 100, -1, 10, 0, 'stop', -1);"
    "INSERT INTO requests VALUES (2, 'old_2', 2000, 2001, 'chat.completions', 'a', 'k', '', 't', 'm', '', '', 'v',"
    " 429, 'rejected_budget', 'insufficient_quota', 0, 0, 0, 0, 0, 'none', 1, -1, 1, 0, '', -1);"
    "INSERT INTO attempts VALUES (1, 0, 'm', 'p', 503, 'http_503', 0, 0, 0, 0, 0, 'none', 10);"
    "INSERT INTO attempts VALUES (1, 1, 'm', 'p', 200, '', 10, 0, 5, 0, 77, 'provider', 90);";

TEST(Ledger, MigratesAVersion1FileThroughEveryVersionAndKeepsItsRows) {
  TempDir dir;
  const auto path = dir.file("old.db");
  {
    auto db = openDb(path);
    ASSERT_TRUE(db->exec(kSchemaV1));
  }
  {
    auto sink = openLedgerSink(path);
    ASSERT_TRUE(sink) << sink.error().message;
    (*sink)->submit(sample(1));
    (*sink)->flush();
    EXPECT_FALSE((*sink)->problem());
  }
  auto db = openDb(path);
  EXPECT_EQ(*ledgerSchemaVersion(*db), kLedgerSchemaVersion);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM requests"), 3);
  EXPECT_EQ(scalar(*db, "SELECT billed_attempts FROM requests WHERE request_id = 'old_1'"), 1) << "back-filled";
  EXPECT_EQ(scalar(*db, "SELECT billed_attempts FROM requests WHERE request_id = 'old_2'"), 0);
  EXPECT_EQ(scalar(*db, "SELECT billed_attempts FROM requests WHERE request_id = 'req_1'"), 1);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM sqlite_master WHERE name = 'requests_by_run'"), 1);
  // Version 3 summed the old rows per minute, and the new row joined them.
  EXPECT_EQ(scalar(*db, "SELECT sum(cost_micro_usd) FROM spend_by_minute"), 77 + 123);
  EXPECT_EQ(scalar(*db, "SELECT sum(calls) FROM spend_by_minute"), 2);
  EXPECT_EQ(scalar(*db, "SELECT sum(requests) FROM spend_by_minute"), 3);
  EXPECT_EQ(scalar(*db, "SELECT tokens FROM spend_by_minute WHERE minute = 0 AND agent = 'a'"), 15);
}

// The latest migration on its own: a version 2 file (as version 1 and the
// migration to 2 left it) gains spend_by_minute.
TEST(Ledger, MigratesAVersion2File) {
  TempDir dir;
  const auto path = dir.file("v2.db");
  {
    auto db = openDb(path);
    ASSERT_TRUE(db->exec(kSchemaV1));
    ASSERT_TRUE(
        db->exec("ALTER TABLE requests ADD COLUMN billed_attempts INTEGER NOT NULL DEFAULT 0;"
                 "UPDATE requests SET billed_attempts = 1 WHERE request_id = 'old_1';"
                 "CREATE INDEX requests_by_run ON requests(run_id, started_unix_ms) WHERE run_id <> '';"
                 "UPDATE ledger_meta SET value = 2 WHERE key = 'schema_version';"));
  }
  auto db = openDb(path);
  auto before = migrateLedger(*db, path);
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_EQ(*before, 2);
  EXPECT_EQ(*ledgerSchemaVersion(*db), kLedgerSchemaVersion);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM spend_by_minute"), 1) << "both rows started in minute 0, agent a, tier t";
  EXPECT_EQ(scalar(*db, "SELECT calls FROM spend_by_minute"), 1);
  EXPECT_EQ(scalar(*db, "SELECT requests FROM spend_by_minute"), 2);
}

// Versions 4 and 5: a version 3 file gains the import columns (NULL for
// its rows, the gateway's) and the index that makes imports idempotent, and
// loses the per-agent and per-model indexes (v5).
TEST(Ledger, MigratesAVersion3File) {
  TempDir dir;
  const auto path = dir.file("v3.db");
  {
    auto db = openDb(path);
    ASSERT_TRUE(db->exec(kSchemaV1));
    ASSERT_TRUE(
        db->exec("ALTER TABLE requests ADD COLUMN billed_attempts INTEGER NOT NULL DEFAULT 0;"
                 "CREATE INDEX requests_by_run ON requests(run_id, started_unix_ms) WHERE run_id <> '';"
                 "CREATE TABLE spend_by_minute (minute INTEGER NOT NULL, agent TEXT NOT NULL,"
                 " tier TEXT NOT NULL, tokens INTEGER NOT NULL, cost_micro_usd INTEGER NOT NULL,"
                 " calls INTEGER NOT NULL, requests INTEGER NOT NULL,"
                 " PRIMARY KEY (minute, agent, tier)) WITHOUT ROWID;"
                 "UPDATE ledger_meta SET value = 3 WHERE key = 'schema_version';"));
  }
  auto db = openDb(path);
  auto before = migrateLedger(*db, path);
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_EQ(*before, 3);
  EXPECT_EQ(*ledgerSchemaVersion(*db), kLedgerSchemaVersion);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM requests WHERE source IS NULL AND cost_source IS NULL"), 2);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM sqlite_master WHERE name = 'requests_imported'"), 1);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM sqlite_master WHERE name IN ('requests_by_agent', 'requests_by_model')"),
            0);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM sqlite_master WHERE name IN ('requests_by_time', 'requests_by_run')"), 2);
  // Gateway rows may share a request id; imported ones may not.
  ASSERT_TRUE(db->exec("INSERT INTO requests SELECT * FROM requests WHERE id = 1 LIMIT 0;"));
  ASSERT_TRUE(db->exec("UPDATE requests SET request_id = 'same'"));
  ASSERT_TRUE(db->exec("UPDATE requests SET source = 'a.jsonl' WHERE id = 1"));
  EXPECT_FALSE(db->exec("UPDATE requests SET source = 'a.jsonl' WHERE id = 2"));
  // And the writer still writes (its insert names no import column).
  db.reset();
  auto sink = openLedgerSink(path);
  ASSERT_TRUE(sink) << sink.error().message;
  (*sink)->submit(sample(7));
  (*sink)->flush();
  EXPECT_FALSE((*sink)->problem());
}

TEST(Ledger, RefusesAFileFromANewerVersion) {
  TempDir dir;
  const auto path = dir.file("new.db");
  {
    auto db = openDb(path);
    ASSERT_TRUE(
        db->exec("CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                 "INSERT INTO ledger_meta VALUES ('schema_version', 99);"));
  }
  auto sink = openLedgerSink(path);
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message.find("schema version 99, newer than this Sluice can write (" +
                                      std::to_string(kLedgerSchemaVersion) + ")"),
            std::string::npos)
      << sink.error().message;
  EXPECT_NE(sink.error().message.find(path), std::string::npos) << sink.error().message;
}

TEST(Ledger, AnUnwritablePathFailsAtOpenWithItsName) {
  TempDir dir;
  const auto path = dir.file("missing/dir/l.db");
  auto sink = openLedgerSink(path);
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message.find(path), std::string::npos) << sink.error().message;
}

TEST(Ledger, BatchesRowsIntoFewTransactions) {
  TempDir dir;
  const auto path = dir.file("l.db");
  std::atomic<int> commits{0};
  std::atomic<int> batches{0};
  {
    LedgerSinkOptions opts;
    opts.batch_interval = std::chrono::milliseconds(200);
    opts.max_rows_per_transaction = 400;
    opts.before_batch = [&](sqlite3* db) {
      if (batches++ == 0) {
        sqlite3_commit_hook(
            db, [](void* n) { return static_cast<std::atomic<int>*>(n)->fetch_add(1), 0; }, &commits);
      }
    };
    auto sink = openLedgerSink(path, opts);
    ASSERT_TRUE(sink);
    for (int i = 0; i < 1000; ++i) (*sink)->submit(sample(i));
    (*sink)->flush();
  }
  // 1000 rows queued within a batch interval or two: a few transactions of
  // at most 400 rows each, not a transaction per row.
  EXPECT_LE(batches.load(), 3);
  EXPECT_GE(commits.load(), 3);
  EXPECT_LE(commits.load(), 6);
  auto db = openDb(path);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM requests"), 1000);
}

TEST(Ledger, GracefulStopWritesEverythingQueued) {
  TempDir dir;
  const auto path = dir.file("l.db");
  {
    LedgerSinkOptions opts;
    opts.batch_interval = std::chrono::seconds(10);  // only the stop writes them
    auto sink = openLedgerSink(path, opts);
    ASSERT_TRUE(sink);
    for (int i = 0; i < 5000; ++i) (*sink)->submit(sample(i, 2));
  }  // destroyed without a flush
  auto db = openDb(path);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM requests"), 5000);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM attempts"), 10000);
}

// PRAGMA max_page_count stands in for a disk that fills up (SQLITE_FULL)
// and frees up again: the rows that did not fit wait and are written later,
// in order, each once.
TEST(Ledger, AFullDiskIsRetriedFromTheFailedTransactionAndLosesNothing) {
  TempDir dir;
  const auto path = dir.file("l.db");
  std::atomic<bool> full{true};
  Reports reports;
  {
    LedgerSinkOptions opts;
    opts.max_rows_per_transaction = 50;
    opts.report = reports.fn();
    opts.before_batch = [&](sqlite3* db) {
      // 1 = as small as the file is now: no new page fits.
      sqlite3_exec(db, full ? "PRAGMA max_page_count = 1" : "PRAGMA max_page_count = 1073741823", nullptr, nullptr,
                   nullptr);
    };
    auto sink = openLedgerSink(path, opts);
    ASSERT_TRUE(sink);
    // The first rows fit into the pages the file has; then it is full.
    for (int i = 0; i < 500; ++i) (*sink)->submit(sample(i));
    (*sink)->flush();
    auto p = (*sink)->problem();
    ASSERT_TRUE(p);
    EXPECT_NE(p->find("full"), std::string::npos) << *p;
    for (int i = 500; i < 700; ++i) (*sink)->submit(sample(i));  // more arrive meanwhile
    (*sink)->flush();
    EXPECT_TRUE((*sink)->problem());
    full = false;  // space again
    (*sink)->flush();
    EXPECT_FALSE((*sink)->problem());
  }
  auto db = openDb(path);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM requests"), 700);
  EXPECT_EQ(scalar(*db, "SELECT count(DISTINCT request_id) FROM requests"), 700) << "none written twice";
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM attempts"), 700) << "no attempt of a rolled-back request kept";
  EXPECT_EQ(scalar(*db, "SELECT sum(requests) FROM spend_by_minute"), 700) << "the sums rolled back with their rows";
  EXPECT_EQ(scalar(*db, "SELECT sum(cost_micro_usd) FROM spend_by_minute"), 700 * 123);
  auto st = db->prepare("SELECT request_id FROM requests ORDER BY id");
  ASSERT_TRUE(st);
  for (int i = 0; i < 700; ++i) {
    ASSERT_TRUE(*st->step());
    ASSERT_EQ(st->text(0), "req_" + std::to_string(i)) << "in order";
  }
  const auto r = reports.all();
  ASSERT_EQ(r.size(), 2U);
  EXPECT_TRUE(r[0].first);
  EXPECT_NE(r[0].second.find(path), std::string::npos) << r[0].second;
  EXPECT_FALSE(r[1].first);
  EXPECT_NE(r[1].second.find("written again; 0 record(s) were dropped"), std::string::npos) << r[1].second;
}

TEST(Ledger, BoundsItsBacklogWhileWritesFailAndCountsTheDrops) {
  TempDir dir;
  const auto path = dir.file("l.db");
  Reports reports;
  {
    LedgerSinkOptions opts;
    opts.max_backlog_bytes = 16 * 1024;
    opts.report = reports.fn();
    opts.before_batch = [](sqlite3* db) { sqlite3_exec(db, "PRAGMA max_page_count = 1", nullptr, nullptr, nullptr); };
    auto sink = openLedgerSink(path, opts);
    ASSERT_TRUE(sink);
    (*sink)->flush();
    for (int i = 0; i < 2000; ++i) (*sink)->submit(sample(i));  // ~600 KB encoded
    ASSERT_TRUE((*sink)->problem()) << "dropping is a problem at once";
    (*sink)->flush();
  }
  const auto r = reports.all();
  ASSERT_FALSE(r.empty());
  unsigned lost = 0, dropped = 0;
  const std::string fmt = "ledger " + path + ": %u record(s) could not be written before exit, %u dropped";
  ASSERT_EQ(std::sscanf(r.back().second.c_str(), fmt.c_str(), &lost, &dropped), 2) << r.back().second;
  auto db = openDb(path);
  const auto written = static_cast<unsigned>(scalar(*db, "SELECT count(*) FROM requests"));
  EXPECT_EQ(written + lost + dropped, 2000U);
  EXPECT_GE(dropped, 1800U);
}

TEST(Ledger, SpendSumsEachWindowPerScope) {
  TempDir dir;
  const auto path = dir.file("l.db");
  using namespace std::chrono;
  // 2026-03-15T12:00:30Z.
  const core::WallTime now{seconds{1'773'576'030}};
  const int64_t now_ms = 1'773'576'030'000;
  const int64_t day_start_ms = 1'773'532'800'000;    // 2026-03-15T00:00Z
  const int64_t month_start_ms = 1'772'323'200'000;  // 2026-03-01T00:00Z
  {
    auto sink = openLedgerSink(path);
    ASSERT_TRUE(sink);
    auto rec = [&](int64_t started_ms, std::string agent, std::string tier, std::string run, int billed) {
      UsageRecord r = sample(0, 0);
      r.started_unix_ms = started_ms;
      r.agent = std::move(agent);
      r.tier = std::move(tier);
      r.run_id = std::move(run);
      for (int k = 0; k < billed; ++k) {
        r.attempts.push_back(Attempt{.usage = {.input = 100, .output = 10}, .cost_micro_usd = 1000});
      }
      r.usage = {.input = 100 * billed, .output = 10 * billed};
      r.cost_micro_usd = 1000 * billed;
      (*sink)->submit(std::move(r));
    };
    rec(now_ms - 2'000, "a", "fast", "run1", 1);         // this minute, day, month
    rec(now_ms - 2'500, "b", "", "", 2);                 // another second; no tier
    rec(day_start_ms + 5, "a", "fast", "run1", 1);       // today, not this minute
    rec(month_start_ms + 5, "a", "fast", "", 1);         // this month only
    rec(month_start_ms - 5, "a", "fast", "", 1);         // last month: nowhere
    rec(now_ms - 7'200'000, "a", "fast", "run_old", 1);  // today; its run idle for 2 h
    rec(now_ms - 1'000, "a", "fast", "", 0);             // a rejection: nothing spent
    (*sink)->flush();
  }
  auto db = openDb(path);
  auto spent = ledgerSpend(*db, core::Calendar::utc(), now, hours(1));
  ASSERT_TRUE(spent) << spent.error().message;
  auto find = [&](const std::string& scope, core::BudgetWindow w, int64_t key) -> std::optional<core::SavedCounter> {
    for (const auto& c : *spent) {
      if (c.scope == scope && c.window == w && c.key == key) return c;
    }
    return std::nullopt;
  };
  const int64_t day_key = day_start_ms / 86'400'000;
  const int64_t month_key = 2026 * 12 + 2;
  auto day_global = find("global", core::BudgetWindow::kDay, day_key);
  ASSERT_TRUE(day_global);
  EXPECT_EQ(day_global->usd, 5000);  // 1 + 2 + 1 + 1 (two hours ago)
  EXPECT_EQ(day_global->tokens, 5 * 110);
  EXPECT_EQ(day_global->calls, 5);
  EXPECT_EQ(find("agent:a", core::BudgetWindow::kDay, day_key)->usd, 3000);
  EXPECT_EQ(find("agent:b", core::BudgetWindow::kDay, day_key)->usd, 2000);
  EXPECT_EQ(find("tier:fast", core::BudgetWindow::kDay, day_key)->usd, 3000);
  EXPECT_EQ(find("global", core::BudgetWindow::kMonth, month_key)->usd, 6000);
  EXPECT_EQ(find("agent:a", core::BudgetWindow::kMonth, month_key)->calls, 4);
  const int64_t sec = (now_ms - 2'000) / 1000;
  EXPECT_EQ(find("global", core::BudgetWindow::kMinute, sec)->usd, 1000);
  EXPECT_EQ(find("global", core::BudgetWindow::kMinute, (now_ms - 2'500) / 1000)->usd, 2000);
  EXPECT_EQ(find("agent:a", core::BudgetWindow::kMinute, sec)->calls, 1);
  EXPECT_FALSE(find("global", core::BudgetWindow::kMinute, (day_start_ms + 5) / 1000));
  EXPECT_EQ(find("run:run1", core::BudgetWindow::kTotal, 0)->usd, 2000) << "the run's whole life";
  EXPECT_FALSE(find("run:run_old", core::BudgetWindow::kTotal, 0)) << "idle past its TTL: gone";
  EXPECT_FALSE(find("tier:", core::BudgetWindow::kDay, day_key));
  EXPECT_EQ(scalar(*db, "SELECT sum(cost_micro_usd) FROM spend_by_minute"),
            scalar(*db, "SELECT sum(cost_micro_usd) FROM requests"));
  EXPECT_EQ(scalar(*db, "SELECT sum(tokens) FROM spend_by_minute"),
            scalar(*db, "SELECT sum(input_tokens + output_tokens) FROM requests"));
}

}  // namespace
}  // namespace sluice::store
