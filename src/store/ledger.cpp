#include "store/ledger.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>

namespace sluice::store {
namespace {

// ------------------------------------------------------------------ schema

// Applied in order; a migration's statements and the version bump commit
// together. Never edit a released migration: add the next one.
struct Migration {
  int version;
  const char* what;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, "requests and attempts",
     "CREATE TABLE requests ("
     " id INTEGER PRIMARY KEY,"
     " request_id TEXT NOT NULL,"
     " started_unix_ms INTEGER NOT NULL,"
     " finished_unix_ms INTEGER NOT NULL,"
     " endpoint TEXT NOT NULL, agent TEXT NOT NULL, key_id TEXT NOT NULL, run_id TEXT NOT NULL,"
     " tier TEXT NOT NULL, requested_model TEXT NOT NULL, served_model TEXT NOT NULL,"
     " provider TEXT NOT NULL, config_version TEXT NOT NULL,"
     " http_status INTEGER NOT NULL, outcome TEXT NOT NULL, error_code TEXT NOT NULL,"
     " input_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
     " reasoning_tokens INTEGER NOT NULL, cost_micro_usd INTEGER NOT NULL, usage_source TEXT NOT NULL,"
     " latency_us INTEGER NOT NULL, ttft_us INTEGER NOT NULL, gateway_us INTEGER NOT NULL,"
     " stream INTEGER NOT NULL, finish_reason TEXT NOT NULL, client_retry_count INTEGER NOT NULL);"
     "CREATE TABLE attempts ("
     " request INTEGER NOT NULL REFERENCES requests(id),"
     " attempt INTEGER NOT NULL,"
     " model TEXT NOT NULL, provider TEXT NOT NULL, http_status INTEGER NOT NULL, error TEXT NOT NULL,"
     " input_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
     " reasoning_tokens INTEGER NOT NULL, cost_micro_usd INTEGER NOT NULL, usage_source TEXT NOT NULL,"
     " latency_us INTEGER NOT NULL,"
     " PRIMARY KEY (request, attempt)) WITHOUT ROWID;"
     "CREATE INDEX requests_by_time ON requests(started_unix_ms);"
     "CREATE INDEX requests_by_agent ON requests(agent, started_unix_ms);"
     "CREATE INDEX requests_by_model ON requests(served_model, started_unix_ms);"},
    {2, "billed_attempts (the calls a request charged to budgets) and the run index",
     "ALTER TABLE requests ADD COLUMN billed_attempts INTEGER NOT NULL DEFAULT 0;"
     "UPDATE requests SET billed_attempts = (SELECT count(*) FROM attempts a WHERE a.request = requests.id"
     " AND (a.cost_micro_usd > 0 OR a.input_tokens + a.output_tokens > 0));"
     "CREATE INDEX requests_by_run ON requests(run_id, started_unix_ms) WHERE run_id <> '';"},
    {3, "spend_by_minute (sums per minute, agent and tier, kept with the rows)",
     "CREATE TABLE spend_by_minute ("
     " minute INTEGER NOT NULL, agent TEXT NOT NULL, tier TEXT NOT NULL,"
     " tokens INTEGER NOT NULL, cost_micro_usd INTEGER NOT NULL, calls INTEGER NOT NULL, requests INTEGER NOT NULL,"
     " PRIMARY KEY (minute, agent, tier)) WITHOUT ROWID;"
     "INSERT INTO spend_by_minute SELECT started_unix_ms / 60000, agent, tier,"
     " CAST(TOTAL(input_tokens + output_tokens) AS INTEGER), CAST(TOTAL(cost_micro_usd) AS INTEGER),"
     " CAST(TOTAL(billed_attempts) AS INTEGER), count(*) FROM requests GROUP BY 1, 2, 3;"},
    {4, "imported rows: their source file, where their cost came from, one row per imported line",
     "ALTER TABLE requests ADD COLUMN source TEXT;"
     "ALTER TABLE requests ADD COLUMN cost_source TEXT;"
     "CREATE UNIQUE INDEX requests_imported ON requests(request_id) WHERE source IS NOT NULL;"},
    {5, "no per-agent and per-model indexes (each slowed the writer; reports filter by time)",
     "DROP INDEX IF EXISTS requests_by_agent;"
     "DROP INDEX IF EXISTS requests_by_model;"},
};
static_assert(std::size(kMigrations) == kLedgerSchemaVersion);

core::Result<void> rollbackAfter(SqliteDb& db, const core::Error& e) {
  if (sqlite3_get_autocommit(db.raw()) == 0) (void)db.exec("ROLLBACK");
  return std::unexpected(e);
}

// ------------------------------------------------------------------ records

// The queue's encoding of a UsageRecord: integers as 8 raw bytes, strings as
// a 4-byte length and their bytes, in the order of the insert's columns.
// Decoded only by this file's writer, in the same process.
// Two passes over the same field list (encodeFields): Sizer adds up the
// exact size, Writer copies through a raw pointer after one
// resize_and_overwrite (no per-field capacity checks on the loop thread).
class Sizer {
 public:
  void num(int64_t) { n_ += sizeof(int64_t); }
  void str(std::string_view s) { n_ += sizeof(uint32_t) + std::min<size_t>(s.size(), UINT32_MAX); }
  [[nodiscard]] size_t size() const { return n_; }

 private:
  size_t n_ = 0;
};

class Writer {
 public:
  explicit Writer(char* p) : p_(p) {}
  void num(int64_t v) {
    std::memcpy(p_, &v, sizeof v);
    p_ += sizeof v;
  }
  void str(std::string_view s) {
    const auto n = static_cast<uint32_t>(std::min<size_t>(s.size(), UINT32_MAX));
    std::memcpy(p_, &n, sizeof n);
    std::memcpy(p_ + sizeof n, s.data(), n);
    p_ += sizeof n + n;
  }

 private:
  char* p_;
};

class Decoder {
 public:
  explicit Decoder(const char* p) : p_(p) {}
  int64_t num() {
    int64_t v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }
  std::string_view str() {
    uint32_t n;
    std::memcpy(&n, p_, sizeof n);
    p_ += sizeof n;
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  [[nodiscard]] const char* pos() const { return p_; }

 private:
  const char* p_;
};

// What settle() counts as calls: one per attempt the provider billed (a
// billed attempt's reservation is settled; unbilled attempts are released).
int64_t billedAttempts(const UsageRecord& r) {
  int64_t n = 0;
  for (const Attempt& a : r.attempts) n += (a.cost_micro_usd > 0 || a.usage.total() > 0) ? 1 : 0;
  return n;
}

template <class Out>
void encodeFields(Out& e, const UsageRecord& r) {
  e.str(r.request_id);
  e.num(r.started_unix_ms);
  e.num(r.finished_unix_ms);
  e.str(r.endpoint);
  e.str(r.agent);
  e.str(r.key_id);
  e.str(r.run_id);
  e.str(r.tier);
  e.str(r.requested_model);
  e.str(r.served_model);
  e.str(r.provider);
  e.str(r.config_version);
  e.num(r.http_status);
  e.num(static_cast<int64_t>(r.outcome));
  e.str(r.error_code);
  e.num(r.usage.input);
  e.num(r.usage.cached);
  e.num(r.usage.output);
  e.num(r.usage.reasoning);
  e.num(r.cost_micro_usd);
  e.num(static_cast<int64_t>(r.usage_source));
  e.num(billedAttempts(r));
  e.num(r.latency_us);
  e.num(r.ttft_us);
  e.num(r.gateway_us);
  e.num(r.stream ? 1 : 0);
  e.str(r.finish_reason);
  e.num(r.retry_count_header);
  e.num(static_cast<int64_t>(r.attempts.size()));
  for (const Attempt& a : r.attempts) {
    e.str(a.model);
    e.str(a.provider);
    e.num(a.http_status);
    e.str(a.error);
    e.num(a.usage.input);
    e.num(a.usage.cached);
    e.num(a.usage.output);
    e.num(a.usage.reasoning);
    e.num(a.cost_micro_usd);
    e.num(static_cast<int64_t>(a.usage_source));
    e.num(a.latency_us);
  }
}

void encode(std::string& out, const UsageRecord& r) {
  Sizer size;
  encodeFields(size, r);
  const size_t old_size = out.size();
  const size_t new_size = old_size + size.size();
  // The size is returned as computed, not the op's second argument: when it
  // grows the string, libstdc++ 12 passes the new capacity there.
  out.resize_and_overwrite(new_size, [&](char* data, size_t) {
    Writer w(data + old_size);
    encodeFields(w, r);
    return new_size;
  });
}

constexpr const char* kInsertRequest =
    "INSERT INTO requests (request_id, started_unix_ms, finished_unix_ms, endpoint, agent, key_id, run_id, tier,"
    " requested_model, served_model, provider, config_version, http_status, outcome, error_code, input_tokens,"
    " cached_tokens, output_tokens, reasoning_tokens, cost_micro_usd, usage_source, billed_attempts, latency_us,"
    " ttft_us, gateway_us, stream, finish_reason, client_retry_count)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,"
    " ?23, ?24, ?25, ?26, ?27, ?28)";
constexpr const char* kAddSpend =
    "INSERT INTO spend_by_minute (minute, agent, tier, tokens, cost_micro_usd, calls, requests)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (minute, agent, tier) DO UPDATE SET"
    " tokens = tokens + excluded.tokens, cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd,"
    " calls = calls + excluded.calls, requests = requests + excluded.requests";
constexpr const char* kInsertAttempt =
    "INSERT INTO attempts (request, attempt, model, provider, http_status, error, input_tokens, cached_tokens,"
    " output_tokens, reasoning_tokens, cost_micro_usd, usage_source, latency_us)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

// Binds decoded values in column order. The bytes live in the batch buffer
// until the statement has run: no copies (SQLITE_STATIC).
class Binder {
 public:
  explicit Binder(sqlite3_stmt* s) : s_(s) {}
  void num(int64_t v) { sqlite3_bind_int64(s_, ++i_, v); }
  void str(std::string_view v) { sqlite3_bind_text(s_, ++i_, v.data(), static_cast<int>(v.size()), SQLITE_STATIC); }
  void lit(std::string_view v) { str(v); }

 private:
  sqlite3_stmt* s_;
  int i_ = 0;
};

Outcome outcomeOf(int64_t v) {
  return v >= 0 && v <= static_cast<int64_t>(Outcome::kRejectedOverload) ? static_cast<Outcome>(v) : Outcome::kOk;
}
UsageSource sourceOf(int64_t v) {
  return v >= 0 && v <= static_cast<int64_t>(UsageSource::kClamped) ? static_cast<UsageSource>(v) : UsageSource::kNone;
}

// ------------------------------------------------------------------ the sink

class LedgerSink final : public UsageSink {
 public:
  LedgerSink(std::unique_ptr<SqliteDb> db, Stmt insert_request, Stmt insert_attempt, Stmt add_spend, std::string path,
             LedgerSinkOptions options)
      : db_(std::move(db)),
        insert_request_(std::move(insert_request)),
        insert_attempt_(std::move(insert_attempt)),
        add_spend_(std::move(add_spend)),
        path_(std::move(path)),
        options_(std::move(options)),
        writer_([this] { run(); }) {}

  ~LedgerSink() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    writer_.join();
  }

  void submit(UsageRecord&& record) override { submitCopy(record); }

  // Encoded here, on the caller's thread, into a thread-local buffer; the
  // lock covers one append of its bytes. The record's strings stay with the
  // thread that allocated them.
  void submitCopy(const UsageRecord& record) override {
    thread_local std::string buf;
    buf.clear();
    encode(buf, record);
    bool wake;
    {
      std::lock_guard lock(mu_);
      if (pending_.size() + unwritten_bytes_ + buf.size() > options_.max_backlog_bytes) {
        ++dropped_;
        if (!problem_) problem_ = "the ledger is not keeping up: its backlog is full and records are dropped";
        return;
      }
      // Group commit: a record that finds the writer idle wakes it (one
      // futex wake; at low load that is every record, and each is durable a
      // commit later). Under load the writer is busy committing the previous
      // batch and the records gather meanwhile: no wake, no context switch.
      wake = (pending_.empty() && writer_idle_) || pending_.size() + buf.size() >= kWakeAtBytes;
      pending_.append(buf);
      ++pending_records_;
    }
    if (wake) cv_.notify_one();
  }

  void flush() override {
    std::unique_lock lock(mu_);
    const uint64_t want = cycles_started_ + 1;
    flush_requested_ = true;
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return cycles_done_ >= want; });
  }

  [[nodiscard]] std::optional<std::string> problem() const override {
    std::lock_guard lock(mu_);
    return problem_;
  }

  [[nodiscard]] UsageSinkStats stats() const override {
    std::lock_guard lock(mu_);
    return {.backlog_bytes = pending_.size() + unwritten_bytes_, .dropped = dropped_};
  }

 private:
  struct Failure {
    std::string message;
  };

  void report(bool failing, const std::string& message) const {
    if (options_.report) options_.report(failing, message);
  }

  std::optional<Failure> sqliteFailure(std::string_view during) const {
    return Failure{fmt::format("{}: {} ({})", during, sqlite3_errmsg(db_->raw()),
                               sqlite3_errstr(sqlite3_extended_errcode(db_->raw())))};
  }

  // Inserts one decoded record; returns where the next one starts.
  std::optional<Failure> insertOne(Decoder& d) {
    sqlite3_stmt* rq = insert_request_.get();
    Binder b(rq);
    b.str(d.str());  // request_id
    const int64_t started = d.num();
    b.num(started);
    b.num(d.num());                         // finished
    std::array<std::string_view, 9> names;  // endpoint, agent, key_id, run_id, tier, .. config_version
    for (auto& n : names) b.str(n = d.str());
    b.num(d.num());  // http_status
    b.lit(toString(outcomeOf(d.num())));
    b.str(d.str());                // error_code
    std::array<int64_t, 5> usage;  // input, cached, output, reasoning, cost
    for (auto& u : usage) b.num(u = d.num());
    b.lit(toString(sourceOf(d.num())));
    const int64_t billed = d.num();
    b.num(billed);
    for (int i = 0; i < 4; ++i) b.num(d.num());  // latency, ttft, gateway, stream
    b.str(d.str());                              // finish_reason
    b.num(d.num());                              // client_retry_count
    const int64_t attempts = d.num();
    const int rc = sqlite3_step(rq);
    sqlite3_reset(rq);
    if (rc != SQLITE_DONE) return sqliteFailure("insert into requests");
    auto& sums = spend_[SpendKey{started / 60'000, names[1], names[4]}];
    sums[0] = core::addSaturating(sums[0], core::addSaturating(usage[0], usage[2]));
    sums[1] = core::addSaturating(sums[1], usage[4]);
    sums[2] = core::addSaturating(sums[2], billed);
    sums[3] += 1;
    const int64_t row = sqlite3_last_insert_rowid(db_->raw());
    sqlite3_stmt* at = insert_attempt_.get();
    for (int64_t k = 0; k < attempts; ++k) {
      Binder a(at);
      a.num(row);
      a.num(k);
      a.str(d.str());                              // model
      a.str(d.str());                              // provider
      a.num(d.num());                              // http_status
      a.str(d.str());                              // error
      for (int i = 0; i < 5; ++i) a.num(d.num());  // tokens x4, cost
      a.lit(toString(sourceOf(d.num())));
      a.num(d.num());  // latency
      const int arc = sqlite3_step(at);
      sqlite3_reset(at);
      if (arc != SQLITE_DONE) return sqliteFailure("insert into attempts");
    }
    return std::nullopt;
  }

  // The transaction's sums into spend_by_minute, one upsert per key.
  std::optional<Failure> addSpend() {
    sqlite3_stmt* st = add_spend_.get();
    for (const auto& [k, v] : spend_) {
      Binder b(st);
      b.num(k.minute);
      b.str(k.agent);
      b.str(k.tier);
      for (const int64_t x : v) b.num(x);
      const int rc = sqlite3_step(st);
      sqlite3_reset(st);
      if (rc != SQLITE_DONE) return sqliteFailure("update spend_by_minute");
    }
    spend_.clear();
    return std::nullopt;
  }

  // Commits `out` (encoded records) in transactions of at most
  // max_rows_per_transaction rows. What was committed is removed from `out`;
  // on a failure the rest stays, to be retried from its first record.
  std::optional<Failure> writeRows(std::string& out, uint64_t& records) {
    size_t committed = 0;
    std::optional<Failure> failure;
    while (committed < out.size()) {
      if (sqlite3_exec(db_->raw(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
        failure = sqliteFailure("begin");
        break;
      }
      Decoder d(out.data() + committed);
      size_t rows = 0;
      spend_.clear();
      while (d.pos() < out.data() + out.size() && rows < options_.max_rows_per_transaction) {
        failure = insertOne(d);
        if (failure) break;
        ++rows;
      }
      if (!failure) failure = addSpend();
      if (!failure && sqlite3_exec(db_->raw(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        failure = sqliteFailure("commit");
      }
      if (failure) {
        if (sqlite3_get_autocommit(db_->raw()) == 0) sqlite3_exec(db_->raw(), "ROLLBACK", nullptr, nullptr, nullptr);
        break;
      }
      committed = static_cast<size_t>(d.pos() - out.data());
      records -= rows;
    }
    out.erase(0, committed);
    return failure;
  }

  void run() {
    std::string out;  // taken from pending_, not committed yet (kept across failed attempts)
    uint64_t out_records = 0;
    uint64_t failing_cycles = 0;
    uint64_t dropped_at_failure = 0;
    const uint64_t report_every = std::max<uint64_t>(1, 10'000 / std::max<int64_t>(1, options_.retry_interval.count()));
    // The batch interval is real time on this thread (no loop clock here).
    const core::Clock& clock = core::SystemClock::instance();
    core::MonoTime last_batch = clock.exactMonotonicNow();
    std::unique_lock lock(mu_);
    while (true) {
      if (!out.empty()) {
        // Writing failed: retry after a pause (or at a flush, at the stop).
        cv_.wait_for(lock, options_.retry_interval, [&] { return stopping_ || flush_requested_; });
      } else {
        writer_idle_ = true;
        cv_.wait(lock, [&] { return stopping_ || flush_requested_ || !pending_.empty(); });
        writer_idle_ = false;
        // Batches start at most once per batch interval: what arrives
        // meanwhile joins this one.
        cv_.wait_until(lock, last_batch + options_.batch_interval,
                       [&] { return stopping_ || flush_requested_ || pending_.size() >= kWakeAtBytes; });
      }
      last_batch = clock.exactMonotonicNow();
      flush_requested_ = false;
      const uint64_t cycle = ++cycles_started_;
      if (out.empty()) {
        out.swap(pending_);
      } else {
        out.append(pending_);
        pending_.clear();
      }
      out_records += std::exchange(pending_records_, 0);
      const bool stop = stopping_;
      const uint64_t dropped = dropped_;
      lock.unlock();

      std::optional<Failure> failure;
      if (!out.empty()) {
        if (options_.before_batch) options_.before_batch(db_->raw());
        failure = writeRows(out, out_records);
      }
      if (failure) {
        if (failing_cycles++ == 0) {
          dropped_at_failure = dropped;
          report(true,
                 fmt::format("ledger {}: {}; {} record(s) are kept in memory (up to {} MB) and retried every {} ms",
                             path_, failure->message, out_records, options_.max_backlog_bytes >> 20,
                             options_.retry_interval.count()));
        } else if (failing_cycles % report_every == 0) {
          report(true, fmt::format("ledger {}: still failing ({}): {} record(s) waiting, {} dropped", path_,
                                   failure->message, out_records, dropped - dropped_at_failure));
        }
      } else if (failing_cycles > 0 && out.empty()) {
        failing_cycles = 0;
        report(false, fmt::format("ledger {}: written again; {} record(s) were dropped while it failed", path_,
                                  dropped - dropped_at_failure));
      }

      lock.lock();
      unwritten_bytes_ = out.size();
      if (failure) {
        problem_ = fmt::format("writing the ledger failed: {}", failure->message);
      } else if (out.empty()) {
        problem_.reset();
      }
      cycles_done_ = cycle;
      done_cv_.notify_all();
      if (stop && (pending_.empty() || failure)) {
        const uint64_t lost = out_records + pending_records_;
        if (lost > 0 || dropped_ > 0) {
          report(true, fmt::format("ledger {}: {} record(s) could not be written before exit, {} dropped", path_, lost,
                                   dropped_));
        }
        return;
      }
    }
  }

  static constexpr size_t kWakeAtBytes = 1 << 20;

  std::unique_ptr<SqliteDb> db_;  // writer thread only, after construction
  Stmt insert_request_;
  Stmt insert_attempt_;
  Stmt add_spend_;
  // The open transaction's sums per (minute, agent, tier); the views point
  // into the batch being written.
  struct SpendKey {
    int64_t minute;
    std::string_view agent;
    std::string_view tier;
    auto operator<=>(const SpendKey&) const = default;
  };
  std::map<SpendKey, std::array<int64_t, 4>> spend_;  // tokens, cost, calls, requests
  std::string path_;
  LedgerSinkOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::string pending_;  // encoded records not yet taken by the writer
  uint64_t pending_records_ = 0;
  uint64_t unwritten_bytes_ = 0;  // taken by the writer, not yet committed
  uint64_t dropped_ = 0;
  uint64_t cycles_started_ = 0;
  uint64_t cycles_done_ = 0;
  std::optional<std::string> problem_;
  bool flush_requested_ = false;
  bool stopping_ = false;
  bool writer_idle_ = false;  // waiting for a record, nothing queued
  std::thread writer_;        // last: starts after the members it uses exist
};

// ------------------------------------------------------------------ spend

using Tally = std::array<double, 3>;  // tokens, usd, calls (TOTAL(): no overflow error)
using SpendKey = std::tuple<std::string, core::BudgetWindow, int64_t>;

int64_t clampToInt(double v) {
  if (!(v > 0)) return 0;
  if (v >= 9.2e18) return INT64_MAX;
  return static_cast<int64_t>(v);
}

int64_t unixMs(core::WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

core::Result<int> ledgerSchemaVersion(SqliteDb& db) {
  if (auto r = db.exec("CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"); !r) {
    return std::unexpected(r.error());
  }
  auto st = db.prepare("SELECT value FROM ledger_meta WHERE key = 'schema_version'");
  if (!st) return std::unexpected(st.error());
  auto row = st->step();
  if (!row) return std::unexpected(row.error());
  return *row ? static_cast<int>(st->int64(0)) : 0;
}

core::Result<int> migrateLedger(SqliteDb& db, const std::string& path) {
  auto before = ledgerSchemaVersion(db);
  if (!before) return before;
  if (*before > kLedgerSchemaVersion) {
    return core::fail(
        core::ErrorCode::kConfig,
        fmt::format("ledger '{}' has schema version {}, newer than this Sluice can write ({}): it was "
                    "written by a newer Sluice. Run that version, or point storage.ledger at another file",
                    path, *before, kLedgerSchemaVersion));
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= *before) continue;
    if (auto r = db.exec("BEGIN IMMEDIATE"); !r) return std::unexpected(r.error());
    // Read again inside the transaction: another process may have migrated.
    auto now = ledgerSchemaVersion(db);
    if (!now) {
      (void)rollbackAfter(db, now.error());
      return now;
    }
    if (*now >= m.version) {
      (void)db.exec("COMMIT");
      continue;
    }
    if (auto r = db.exec(m.sql); !r) {
      (void)rollbackAfter(db, r.error());
      return core::fail(core::ErrorCode::kInternal, fmt::format("ledger '{}': migration to version {} ({}) failed: {}",
                                                                path, m.version, m.what, r.error().message));
    }
    if (auto r = db.exec(fmt::format("INSERT INTO ledger_meta (key, value) VALUES ('schema_version', {}) "
                                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                     m.version));
        !r) {
      (void)rollbackAfter(db, r.error());
      return std::unexpected(r.error());
    }
    if (auto r = db.exec("COMMIT"); !r) {
      (void)rollbackAfter(db, r.error());
      return std::unexpected(r.error());
    }
  }
  return *before;
}

core::Result<std::unique_ptr<UsageSink>> openLedgerSink(const std::string& path, LedgerSinkOptions options) {
  // Opened here, then used by the writer thread alone. SQLite's 4 KB pages:
  // 16 KB pages wrote a little faster in large batches, but a small batch (a
  // quiet gateway commits every few requests) rewrites a page of the table,
  // of each index and of attempts, so larger pages write several times more
  // WAL per commit (BENCHMARKS.md).
  auto db = SqliteDb::open(path, {.one_thread = true});
  if (!db) return std::unexpected(db.error());
  // FULL: each batch's commit is on the disk before the next batch starts,
  // so the loss bound of a hard kill (one batch) also holds for a power cut.
  // One fsync per batch, on the writer thread, off the request path.
  if (auto r = (*db)->exec("PRAGMA synchronous=FULL"); !r) return std::unexpected(r.error());
  if (auto r = migrateLedger(**db, path); !r) return std::unexpected(r.error());
  sqlite3_stmt* rq = nullptr;
  sqlite3_stmt* at = nullptr;
  sqlite3_stmt* sp = nullptr;
  if (sqlite3_prepare_v3((*db)->raw(), kInsertRequest, -1, SQLITE_PREPARE_PERSISTENT, &rq, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3((*db)->raw(), kInsertAttempt, -1, SQLITE_PREPARE_PERSISTENT, &at, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3((*db)->raw(), kAddSpend, -1, SQLITE_PREPARE_PERSISTENT, &sp, nullptr) != SQLITE_OK) {
    std::string msg = sqlite3_errmsg((*db)->raw());
    sqlite3_finalize(rq);
    sqlite3_finalize(at);
    sqlite3_finalize(sp);
    return core::fail(core::ErrorCode::kInternal, "ledger '" + path + "': " + msg);
  }
  return std::unique_ptr<UsageSink>(
      std::make_unique<LedgerSink>(std::move(*db), Stmt(rq), Stmt(at), Stmt(sp), path, std::move(options)));
}

core::Result<std::vector<core::SavedCounter>> ledgerSpend(SqliteDb& db, const core::Calendar& calendar,
                                                          core::WallTime now, core::Nanos run_ttl) {
  const core::CalendarPeriod p = calendar.period(now);
  const int64_t now_ms = unixMs(now);
  std::map<SpendKey, Tally> sums;
  auto add = [&](std::string scope, core::BudgetWindow w, int64_t key, const Tally& t) {
    Tally& s = sums[SpendKey{std::move(scope), w, key}];
    for (size_t m = 0; m < 3; ++m) s[m] += t[m];
  };
  // One row per (agent, tier[, second]) and window, spread over the scopes a
  // request is charged to: global, its tier, its agent.
  auto byScope = [&](core::BudgetWindow w, int64_t key, std::string_view agent, std::string_view tier, const Tally& t) {
    add("global", w, key, t);
    if (!tier.empty()) add("tier:" + std::string(tier), w, key, t);
    if (!agent.empty()) add("agent:" + std::string(agent), w, key, t);
  };
  constexpr const char* kSums =
      "TOTAL(input_tokens + output_tokens), TOTAL(cost_micro_usd), TOTAL(billed_attempts) FROM requests";
  auto rows = [&](SqliteStatement& st, auto&& each) -> core::Result<void> {
    while (true) {
      auto row = st.step();
      if (!row) return std::unexpected(row.error());
      if (!*row) return {};
      each(st);
    }
  };
  auto tally = [](SqliteStatement& st, int col) {
    Tally t{};
    for (int m = 0; m < 3; ++m) t[static_cast<size_t>(m)] = st.real(col + m);
    return t;
  };
  struct Range {
    core::BudgetWindow window;
    int64_t key;
    int64_t from_ms;
    int64_t to_ms;
  };
  for (const Range& r : {Range{core::BudgetWindow::kDay, p.day_key, unixMs(p.day_start), unixMs(p.next_day)},
                         Range{core::BudgetWindow::kMonth, p.month_key, unixMs(p.month_start), unixMs(p.next_month)}}) {
    // From the per-minute sums when the window starts and ends on a minute
    // (every time zone in use today; a month of them is a few thousand rows
    // per agent), else from the rows.
    const bool by_minute = r.from_ms % 60'000 == 0 && r.to_ms % 60'000 == 0;
    auto st = by_minute ? db.prepare(
                              "SELECT agent, tier, TOTAL(tokens), TOTAL(cost_micro_usd), TOTAL(calls) FROM "
                              "spend_by_minute WHERE minute >= ?1 AND minute < ?2 GROUP BY agent, tier")
                        : db.prepare(fmt::format("SELECT agent, tier, {} WHERE started_unix_ms >= ?1 AND "
                                                 "started_unix_ms < ?2 GROUP BY agent, tier",
                                                 kSums));
    if (!st) return std::unexpected(st.error());
    if (by_minute) st->bind(1, r.from_ms / 60'000).bind(2, r.to_ms / 60'000);
    else st->bind(1, r.from_ms).bind(2, r.to_ms);
    if (auto ok = rows(*st, [&](SqliteStatement& s) { byScope(r.window, r.key, s.text(0), s.text(1), tally(s, 2)); });
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  {  // the rolling minute, by the wall-clock second each request started in
    auto st = db.prepare(
        fmt::format("SELECT agent, tier, started_unix_ms / 1000 AS sec, {} "
                    "WHERE started_unix_ms >= ?1 GROUP BY agent, tier, sec",
                    kSums));
    if (!st) return std::unexpected(st.error());
    st->bind(1, now_ms - 61'000);
    if (auto ok = rows(*st,
                       [&](SqliteStatement& s) {
                         byScope(core::BudgetWindow::kMinute, s.int64(2), s.text(0), s.text(1), tally(s, 3));
                       });
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  {  // runs used within their TTL: their whole life
    auto st = db.prepare(
        fmt::format("SELECT run_id, {} WHERE run_id IN (SELECT run_id FROM requests WHERE "
                    "started_unix_ms >= ?1 AND run_id <> '') GROUP BY run_id",
                    kSums));
    if (!st) return std::unexpected(st.error());
    st->bind(1, now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(run_ttl).count());
    if (auto ok =
            rows(*st, [&](SqliteStatement& s) { add("run:" + s.text(0), core::BudgetWindow::kTotal, 0, tally(s, 1)); });
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  std::vector<core::SavedCounter> out;
  out.reserve(sums.size());
  for (const auto& [k, t] : sums) {
    if (t == Tally{}) continue;
    out.push_back(core::SavedCounter{.scope = std::get<0>(k),
                                     .window = std::get<1>(k),
                                     .key = std::get<2>(k),
                                     .tokens = clampToInt(t[0]),
                                     .usd = clampToInt(t[1]),
                                     .calls = clampToInt(t[2])});
  }
  return out;
}

int64_t retentionCutoffMs(const core::Calendar& calendar, core::WallTime now, int64_t days) {
  const int64_t month_start = unixMs(calendar.computePeriod(now).month_start);
  const int64_t back = unixMs(now) - days * 86'400'000;
  return std::min(back, month_start);
}

core::Result<PruneResult> pruneLedger(SqliteDb& db, int64_t cutoff_ms, int64_t runs_since_ms, int64_t max_rows) {
  PruneResult out;
  if (auto r = db.exec("BEGIN IMMEDIATE"); !r) return std::unexpected(r.error());
  auto fail = [&](const core::Error& e) -> core::Result<PruneResult> {
    (void)rollbackAfter(db, e);
    return std::unexpected(e);
  };
  auto pick = db.prepare(
      "SELECT id FROM requests WHERE started_unix_ms < ?1 AND (run_id = '' OR run_id NOT IN"
      " (SELECT run_id FROM requests WHERE started_unix_ms >= ?2 AND run_id <> '')) ORDER BY started_unix_ms LIMIT ?3");
  if (!pick) return fail(pick.error());
  pick->bind(1, cutoff_ms).bind(2, runs_since_ms).bind(3, max_rows);
  std::vector<int64_t> ids;
  while (true) {
    auto row = pick->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    ids.push_back(pick->int64(0));
  }
  auto del_attempts = db.prepare("DELETE FROM attempts WHERE request = ?1");
  auto del_request = db.prepare("DELETE FROM requests WHERE id = ?1");
  if (!del_attempts) return fail(del_attempts.error());
  if (!del_request) return fail(del_request.error());
  for (const int64_t id : ids) {
    del_attempts->bind(1, id);
    if (auto r = del_attempts->run(); !r) return fail(r.error());
    del_request->bind(1, id);
    if (auto r = del_request->run(); !r) return fail(r.error());
  }
  out.requests = static_cast<int64_t>(ids.size());
  // Minutes wholly before the cutoff, about max_rows rows of them per
  // batch: up to the minute of the (max_rows + 1)-th oldest row.
  const int64_t cutoff_minute = cutoff_ms >= 0 ? cutoff_ms / 60'000 : (cutoff_ms - 59'999) / 60'000;
  auto nth = db.prepare("SELECT minute FROM spend_by_minute WHERE minute < ?1 ORDER BY minute LIMIT 1 OFFSET ?2");
  if (!nth) return fail(nth.error());
  nth->bind(1, cutoff_minute).bind(2, max_rows);
  auto nth_row = nth->step();
  if (!nth_row) return fail(nth_row.error());
  int64_t upto = cutoff_minute;
  if (*nth_row) {
    upto = nth->int64(0);
    out.more = true;
  }
  auto del = db.prepare("DELETE FROM spend_by_minute WHERE minute < ?1");
  if (!del) return fail(del.error());
  del->bind(1, upto);
  if (auto r = del->run(); !r) return fail(r.error());
  out.minutes = sqlite3_changes(db.raw());
  if (auto r = db.exec("COMMIT"); !r) return fail(r.error());
  out.more = out.more || out.requests == max_rows;
  return out;
}

}  // namespace sluice::store
