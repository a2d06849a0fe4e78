#include "store/sqlite_db.h"

namespace sluice::store {

core::Result<bool> SqliteStatement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return core::fail(core::ErrorCode::kInternal, std::string("sqlite: ") + sqlite3_errmsg(db_));
}

core::Result<void> SqliteStatement::run() {
  while (true) {
    auto r = step();
    if (!r) {
      reset();
      return std::unexpected(r.error());
    }
    if (!*r) break;
  }
  reset();
  return {};
}

namespace {
// SQLite counts every allocation under a global mutex unless told not to
// (Sluice never reads those statistics); this must run before SQLite
// initializes, hence at static initialization.
[[maybe_unused]] const int kNoMemStatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}  // namespace

core::Result<std::unique_ptr<SqliteDb>> SqliteDb::open(const std::string& path, Options options) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                     (options.one_thread ? SQLITE_OPEN_NOMUTEX : SQLITE_OPEN_FULLMUTEX),
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return core::fail(core::ErrorCode::kInternal, "cannot open SQLite database '" + path + "': " + msg);
  }
  std::unique_ptr<SqliteDb> out(new SqliteDb(db));
  sqlite3_busy_timeout(db, 5000);
  // WAL lets readers (the CLI, `report`) run beside the gateway's writer;
  // NORMAL sync is durable across process crashes, the case we care about.
  if (auto r = out->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !r) return std::unexpected(r.error());
  return out;
}

SqliteDb::~SqliteDb() { sqlite3_close(db_); }

core::Result<void> SqliteDb::exec(std::string_view sql) {
  char* err = nullptr;
  const std::string s(sql);
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return core::fail(core::ErrorCode::kInternal, "sqlite: " + msg);
  }
  return {};
}

core::Result<SqliteStatement> SqliteDb::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK) {
    return core::fail(core::ErrorCode::kInternal, std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  return SqliteStatement(db_, stmt);
}

std::optional<std::string> sqlitePathOf(std::string_view url) {
  for (std::string_view prefix : {"sqlite://", "sqlite:"}) {
    if (url.starts_with(prefix)) {
      auto path = url.substr(prefix.size());
      if (path.empty()) return std::nullopt;
      return std::string(path);
    }
  }
  return std::nullopt;
}

}  // namespace sluice::store
