#pragma once
/// @file
/// @brief What the ledger commands (report, export, import, roi) share:
/// finding the ledger and the config, reading filters, printing money.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/catalog.h"
#include "config/config.h"
#include "core/calendar.h"
#include "store/report.h"
#include "store/sqlite_db.h"

namespace sluice::cli {

/// `--ledger sqlite:PATH` wins; else the config's storage.ledger
/// (`--config F`, default sluice.yaml). A config given explicitly is loaded
/// even with --ledger (its time zone and prices are used).
struct LedgerSource {
  std::string ledger;
  std::string config_path = "sluice.yaml";
  bool config_given = false;
};

struct FilterOptions {
  std::string since;  ///< YYYY-MM-DD (local midnight), an ISO 8601 time, or a span back from now ("7d", "12h")
  std::string until;
  std::vector<std::string> agents;
  std::vector<std::string> models;
  std::vector<std::string> runs;
};

struct LedgerContext {
  std::string path;
  std::optional<config::Config> config;
  core::Calendar calendar = core::Calendar::utc();  ///< budgets.time_zone, else UTC
  std::unique_ptr<store::SqliteDb> db;
};

/// Prints what went wrong to stderr and returns nullopt. `create`: the
/// file may be new (import), and it is migrated to the current schema.
/// `mmap`: see store::openLedgerToRead (off for export: constant memory).
std::optional<LedgerContext> openLedgerContext(const LedgerSource& source, bool create, bool mmap = true);

/// Unix ms of a --since/--until value; nullopt (and a message) when it is
/// none of the accepted forms.
std::optional<int64_t> parseWhen(const std::string& text, const core::Calendar& calendar, int64_t now_ms);

std::optional<store::LedgerFilter> filterOf(const FilterOptions& options, const core::Calendar& calendar,
                                            int64_t now_ms);

/// The prices to replay with: the shipped catalog, overridden by the
/// config's models when there is one (its `models:` rows and
/// unknown_model_price are not needed for routing here).
std::optional<std::map<std::string, core::Price>> loadPrices(const std::optional<config::Config>& cfg);

/// "$1,440.00" when the amount is whole cents, else all six decimals
/// ("$0.000123"): exact either way.
std::string usd(core::MicroUsd micros);
/// Thousands separators: 180000000 → "180,000,000".
std::string grouped(int64_t n);

int64_t nowUnixMs();

}  // namespace sluice::cli
