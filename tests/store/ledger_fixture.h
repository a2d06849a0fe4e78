#pragma once
// Small ledgers built in a test through the store API (the gateway's own
// writer), for the report, import, roi and retention tests.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "store/ledger.h"
#include "store/sqlite_db.h"

namespace sluice::store::testing {

class LedgerDir {
 public:
  LedgerDir() {
    static std::atomic<int> n{0};
    path_ = std::filesystem::temp_directory_path() /
            ("sluice_report_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~LedgerDir() { std::filesystem::remove_all(path_); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The first column of the first row of `sql` (a failed query fails the test).
inline int64_t scalar(SqliteDb& db, const std::string& sql) {
  auto st = db.prepare(sql);
  EXPECT_TRUE(st) << sql;
  if (!st) return -1;
  auto row = st->step();
  EXPECT_TRUE(row && *row) << sql;
  return st->int64(0);
}

// 2026-01-01T00:00:00Z
inline constexpr int64_t kJan1 = 1'767'225'600'000;

// One answered request: `latency_ms`, tokens and cost as given, one attempt
// on `model` (or `attempts` of them, the last one billed).
inline UsageRecord call(std::string agent, const std::string& model, int64_t started_ms, int64_t latency_ms,
                        core::TokenUsage usage, core::MicroUsd cost, int attempts = 1) {
  UsageRecord r;
  r.request_id = "r" + std::to_string(started_ms) + agent + model + std::to_string(latency_ms);
  r.started_unix_ms = started_ms;
  r.finished_unix_ms = started_ms + latency_ms;
  r.endpoint = "chat.completions";
  r.agent = std::move(agent);
  r.tier = "standard";
  r.requested_model = model;
  r.served_model = model;
  r.provider = "openai";
  for (int k = 0; k < attempts; ++k) {
    Attempt a{.model = model, .provider = "openai", .http_status = k + 1 == attempts ? 200 : 503};
    if (k + 1 == attempts) {
      a.usage = usage;
      a.cost_micro_usd = cost;
      a.usage_source = UsageSource::kProvider;
    } else {
      a.error = "http_503";
    }
    r.attempts.push_back(a);
  }
  r.http_status = 200;
  r.usage = usage;
  r.cost_micro_usd = cost;
  r.usage_source = UsageSource::kProvider;
  r.latency_us = latency_ms * 1000;
  r.finish_reason = "stop";
  return r;
}

inline UsageRecord rejected(std::string agent, const std::string& model, int64_t started_ms, Outcome why) {
  UsageRecord r = call(std::move(agent), model, started_ms, 0, {}, 0, 0);
  r.attempts.clear();
  r.outcome = why;
  r.http_status = 429;
  r.usage_source = UsageSource::kNone;
  r.latency_us = 10;
  return r;
}

inline void writeLedger(const std::string& path, std::vector<UsageRecord> records) {
  auto sink = openLedgerSink(path);
  if (!sink) throw std::runtime_error(sink.error().message);
  for (auto& r : records) (*sink)->submit(std::move(r));
  (*sink)->flush();
}

}  // namespace sluice::store::testing
