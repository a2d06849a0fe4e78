#include "cli/ledger_common.h"

#include <fmt/format.h>

#include <chrono>

#include "cli/common.h"
#include "core/clock.h"
#include "core/time_text.h"
#include "store/ledger.h"

namespace sluice::cli {
namespace {

int64_t msOf(core::WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The first instant of local day `day` in `calendar` (offsets up to a day).
int64_t localDayStartMs(const core::Calendar& calendar, int64_t day) {
  core::WallTime t{std::chrono::milliseconds(day * 86'400'000)};
  for (int i = 0; i < 3; ++i) {
    const core::CalendarPeriod p = calendar.computePeriod(t);
    if (p.day_key == day) return msOf(p.day_start);
    t = p.day_key < day ? p.next_day : p.day_start - std::chrono::nanoseconds(1);
  }
  return day * 86'400'000;
}

}  // namespace

int64_t nowUnixMs() { return msOf(core::SystemClock::instance().wallNow()); }

std::optional<LedgerContext> openLedgerContext(const LedgerSource& source, bool create, bool mmap) {
  LedgerContext ctx;
  if (source.config_given || source.ledger.empty()) {
    ctx.config = loadOrReport(source.config_path);
    if (!ctx.config) return std::nullopt;
    auto cal = core::Calendar::create(ctx.config->budgets.time_zone);
    if (!cal) {
      fmt::print(stderr, "error: {}\n", cal.error().message);
      return std::nullopt;
    }
    ctx.calendar = std::move(*cal);
  }
  const std::string url = source.ledger.empty() ? ctx.config->storage.ledger : source.ledger;
  auto path = store::sqlitePathOf(url);
  if (!path) {
    fmt::print(stderr, "error: the ledger '{}' is not sqlite:PATH (the only kind these commands read)\n", url);
    return std::nullopt;
  }
  ctx.path = *path;
  if (create) {
    auto db = store::SqliteDb::open(ctx.path);
    if (!db) {
      fmt::print(stderr, "error: {}\n", db.error().message);
      return std::nullopt;
    }
    if (auto m = store::migrateLedger(**db, ctx.path); !m) {
      fmt::print(stderr, "error: {}\n", m.error().message);
      return std::nullopt;
    }
    ctx.db = std::move(*db);
  } else {
    auto db = store::openLedgerToRead(ctx.path, mmap);
    if (!db) {
      fmt::print(stderr, "error: {}\n", db.error().message);
      return std::nullopt;
    }
    ctx.db = std::move(*db);
  }
  return ctx;
}

std::optional<int64_t> parseWhen(const std::string& text, const core::Calendar& calendar, int64_t now_ms) {
  if (auto d = core::parseDurationMs(text)) return now_ms - *d;
  if (auto day = core::parseDate(text)) return localDayStartMs(calendar, *day);
  if (auto t = core::parseIsoTimeMs(text)) return t;
  fmt::print(stderr,
             "error: '{}' is not a date (YYYY-MM-DD), an ISO 8601 time (2026-01-05T10:00:00Z) or a span back from now "
             "(30m, 12h, 7d, 2w)\n",
             text);
  return std::nullopt;
}

std::optional<store::LedgerFilter> filterOf(const FilterOptions& o, const core::Calendar& calendar, int64_t now_ms) {
  store::LedgerFilter f;
  if (!o.since.empty()) {
    f.since_ms = parseWhen(o.since, calendar, now_ms);
    if (!f.since_ms) return std::nullopt;
  }
  if (!o.until.empty()) {
    f.until_ms = parseWhen(o.until, calendar, now_ms);
    if (!f.until_ms) return std::nullopt;
  }
  f.agents = o.agents;
  f.models = o.models;
  f.runs = o.runs;
  return f;
}

std::optional<std::map<std::string, core::Price>> loadPrices(const std::optional<config::Config>& cfg) {
  std::map<std::string, core::Price> prices;
  auto path = config::findCatalogPath();
  if (!path) {
    fmt::print(stderr, "error: the price catalog: {}\n", path.error());
    return std::nullopt;
  }
  auto catalog = config::loadCatalogFile(*path);
  if (!catalog) {
    for (const auto& d : catalog.error()) fmt::print(stderr, "{}\n", d.str());
    return std::nullopt;
  }
  for (const auto& [name, e] : *catalog) prices[name] = e.price;
  if (cfg) {
    for (const auto& [name, m] : cfg->models) prices[name] = m.price;
  }
  return prices;
}

std::string grouped(int64_t n) {
  const bool neg = n < 0;
  std::string digits = std::to_string(neg ? -(n + 1) + 1ull : static_cast<uint64_t>(n));
  std::string out;
  const size_t lead = digits.size() % 3 == 0 ? 3 : digits.size() % 3;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (i - lead) % 3 == 0 && i >= lead) out += ',';
    out += digits[i];
  }
  return neg ? "-" + out : out;
}

std::string usd(core::MicroUsd micros) {
  const bool neg = micros < 0;
  const uint64_t m = neg ? static_cast<uint64_t>(-(micros + 1)) + 1 : static_cast<uint64_t>(micros);
  const uint64_t whole = m / 1'000'000, frac = m % 1'000'000;
  std::string out = (neg ? "-$" : "$") + grouped(static_cast<int64_t>(whole));
  if (frac % 10'000 == 0) return out + fmt::format(".{:02}", frac / 10'000);
  return out + fmt::format(".{:06}", frac);
}

}  // namespace sluice::cli
