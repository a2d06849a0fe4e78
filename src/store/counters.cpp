#include "store/counters.h"

#include "store/sqlite_db.h"

namespace sluice::store {
namespace {

class SqliteCounterStore final : public CounterStore {
 public:
  explicit SqliteCounterStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  core::Result<void> init() {
    return db_->exec(
        "CREATE TABLE IF NOT EXISTS budget_counters ("
        " scope TEXT NOT NULL, window_kind INTEGER NOT NULL, period INTEGER NOT NULL,"
        " tokens INTEGER NOT NULL, usd_micros INTEGER NOT NULL, calls INTEGER NOT NULL,"
        " PRIMARY KEY (scope, window_kind, period));");
  }

  core::Result<void> save(std::span<const core::SavedCounter> counters) override {
    if (auto r = db_->exec("BEGIN IMMEDIATE"); !r) return r;
    auto fail = [&](const core::Error& e) -> core::Result<void> {
      (void)db_->exec("ROLLBACK");
      return std::unexpected(e);
    };
    if (auto r = db_->exec("DELETE FROM budget_counters"); !r) return fail(r.error());
    auto st = db_->prepare(
        "INSERT INTO budget_counters (scope, window_kind, period, tokens, usd_micros, calls) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!st) return fail(st.error());
    for (const auto& c : counters) {
      st->bind(1, c.scope).bind(2, static_cast<int64_t>(c.window)).bind(3, c.key);
      st->bind(4, c.tokens).bind(5, c.usd).bind(6, c.calls);
      if (auto r = st->run(); !r) return fail(r.error());
    }
    return db_->exec("COMMIT");
  }

  core::Result<std::vector<core::SavedCounter>> load() override {
    auto st = db_->prepare("SELECT scope, window_kind, period, tokens, usd_micros, calls FROM budget_counters");
    if (!st) return std::unexpected(st.error());
    std::vector<core::SavedCounter> out;
    while (true) {
      auto row = st->step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      const int64_t window = st->int64(1);
      if (window < 0 || window > static_cast<int64_t>(core::BudgetWindow::kTotal)) continue;  // from a newer version
      out.push_back(core::SavedCounter{.scope = st->text(0),
                                       .window = static_cast<core::BudgetWindow>(window),
                                       .key = st->int64(2),
                                       .tokens = st->int64(3),
                                       .usd = st->int64(4),
                                       .calls = st->int64(5)});
    }
    return out;
  }

 private:
  std::unique_ptr<SqliteDb> db_;
};

class MemoryCounterStore final : public CounterStore {
 public:
  core::Result<void> save(std::span<const core::SavedCounter> counters) override {
    saved_.assign(counters.begin(), counters.end());
    return {};
  }
  core::Result<std::vector<core::SavedCounter>> load() override { return saved_; }

 private:
  std::vector<core::SavedCounter> saved_;
};

}  // namespace

core::Result<std::unique_ptr<CounterStore>> openCounterStore(std::string_view url) {
  if (url == "memory") return std::unique_ptr<CounterStore>(std::make_unique<MemoryCounterStore>());
  auto path = sqlitePathOf(url);
  if (!path)
    return core::fail(core::ErrorCode::kConfig,
                      "unsupported state store '" + std::string(url) + "' (use sqlite:PATH or memory)");
  auto db = SqliteDb::open(*path);
  if (!db) return std::unexpected(db.error());
  auto store = std::make_unique<SqliteCounterStore>(std::move(*db));
  if (auto r = store->init(); !r) return std::unexpected(r.error());
  return std::unique_ptr<CounterStore>(std::move(store));
}

}  // namespace sluice::store
