#pragma once
/// @file
/// @brief A thin RAII layer over SQLite3 (connection + prepared statements).

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace sluice::store {

class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteStatement(SqliteStatement&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement() { sqlite3_finalize(stmt_); }

  SqliteStatement& bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  SqliteStatement& bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  SqliteStatement& bindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  /// Steps once: true = a row is available, false = done. Errors -> Result error.
  core::Result<bool> step();
  /// Steps to completion, then resets for reuse.
  core::Result<void> run();
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  [[nodiscard]] int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  [[nodiscard]] double real(int col) const { return sqlite3_column_double(stmt_, col); }
  [[nodiscard]] bool isNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  /// The column's text, valid until the next step (no copy).
  [[nodiscard]] std::string_view view(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string_view();
  }
  [[nodiscard]] int columns() const { return sqlite3_column_count(stmt_); }
  [[nodiscard]] std::string_view name(int col) const { return sqlite3_column_name(stmt_, col); }
  [[nodiscard]] int type(int col) const { return sqlite3_column_type(stmt_, col); }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteDb {
 public:
  /// Opens (creating) PATH in WAL mode with a busy timeout, so the CLI and a
  /// running server can share one file.
  static core::Result<std::unique_ptr<SqliteDb>> open(const std::string& path) { return open(path, Options{}); }
  struct Options {
    /// The connection is used by one thread at a time: no SQLite mutex
    /// around every call (the ledger's writer).
    bool one_thread = false;
  };
  static core::Result<std::unique_ptr<SqliteDb>> open(const std::string& path, Options options);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  core::Result<void> exec(std::string_view sql);
  core::Result<SqliteStatement> prepare(std::string_view sql);
  [[nodiscard]] sqlite3* raw() const { return db_; }

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

/// Parses "sqlite:PATH" (also "sqlite://PATH"); nullopt for other schemes.
[[nodiscard]] std::optional<std::string> sqlitePathOf(std::string_view url);

}  // namespace sluice::store
