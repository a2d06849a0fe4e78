#include "store/report.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <unordered_map>

#include "core/time_text.h"

namespace sluice::store {
namespace {

// " AND ..." clauses for a filter over `requests` aliased r, with the
// values to bind in order (all text but the times).
struct Where {
  std::string sql;
  std::vector<std::string> texts;  // bound after the times
};

Where whereOf(const LedgerFilter& f) {
  Where w;
  // ?1 and ?2 are the times; the texts are numbered from 3 on.
  auto list = [&](const std::vector<std::string>& values) {
    std::string s = "(";
    for (size_t i = 0; i < values.size(); ++i) {
      s += fmt::format("{}?{}", i ? ", " : "", w.texts.size() + 3);
      w.texts.push_back(values[i]);
    }
    return s + ")";
  };
  if (f.since_ms) w.sql += " AND r.started_unix_ms >= ?1";
  if (f.until_ms) w.sql += " AND r.started_unix_ms < ?2";
  if (!f.agents.empty()) w.sql += " AND r.agent IN " + list(f.agents);
  if (!f.models.empty()) {
    w.sql += " AND (r.requested_model IN " + list(f.models);
    w.sql += " OR r.served_model IN " + list(f.models) + ")";
  }
  if (!f.runs.empty()) w.sql += " AND r.run_id IN " + list(f.runs);
  return w;
}

void bindWhere(SqliteStatement& st, const LedgerFilter& f, const Where& w) {
  if (f.since_ms) st.bind(1, *f.since_ms);
  if (f.until_ms) st.bind(2, *f.until_ms);
  for (size_t i = 0; i < w.texts.size(); ++i) st.bind(static_cast<int>(i) + 3, std::string_view(w.texts[i]));
}

template <class Each>
core::Result<void> eachRow(SqliteStatement& st, Each&& each) {
  while (true) {
    auto row = st.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return {};
    each(st);
  }
}

struct Acc {
  ReportRow row;
  std::vector<int64_t> latencies;
  std::vector<int64_t> ttfts;
};

void finish(Acc& a) {
  a.row.latency_p50_us = nearestRank(a.latencies, 50);
  a.row.latency_p95_us = nearestRank(a.latencies, 95);
  a.row.latency_p99_us = nearestRank(a.latencies, 99);
  a.row.ttft_p50_us = nearestRank(a.ttfts, 50);
  a.latencies = {};
  a.ttfts = {};
}

}  // namespace

core::Result<std::unique_ptr<SqliteDb>> openLedgerToRead(const std::string& path, bool mmap) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return core::fail(core::ErrorCode::kConfig, fmt::format("ledger '{}' does not exist", path));
  }
  // One thread uses the connection (no SQLite mutex per call, a visible
  // share of a report's time); the file is read through mmap (no copy per
  // page).
  auto db = SqliteDb::open(path, {.one_thread = true});
  if (!db) return db;
  if (mmap) (void)(*db)->exec("PRAGMA mmap_size = 4294967296");
  auto has = (*db)->prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'requests'");
  if (!has) return std::unexpected(has.error());
  if (auto row = has->step(); !row || !*row || has->int64(0) == 0) {
    return core::fail(core::ErrorCode::kConfig, fmt::format("'{}' is not a Sluice ledger (no requests table)", path));
  }
  return db;
}

std::optional<ReportKey> reportKeyOf(std::string_view name) {
  if (name == "agent") return ReportKey::kAgent;
  if (name == "model") return ReportKey::kModel;
  if (name == "served-model" || name == "served_model") return ReportKey::kServedModel;
  if (name == "provider") return ReportKey::kProvider;
  if (name == "tier") return ReportKey::kTier;
  if (name == "day") return ReportKey::kDay;
  if (name == "run") return ReportKey::kRun;
  return std::nullopt;
}

std::string_view toString(ReportKey key) {
  switch (key) {
    case ReportKey::kAgent: return "agent";
    case ReportKey::kModel: return "model";
    case ReportKey::kServedModel: return "served-model";
    case ReportKey::kProvider: return "provider";
    case ReportKey::kTier: return "tier";
    case ReportKey::kDay: return "day";
    case ReportKey::kRun: return "run";
  }
  return "?";
}

int64_t nearestRank(std::vector<int64_t>& v, int p) {
  if (v.empty()) return -1;
  const size_t n = v.size();
  size_t rank = (static_cast<size_t>(p) * n + 99) / 100;  // ceil(p/100 × n), 1-based
  if (rank < 1) rank = 1;
  auto it = v.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(v.begin(), it, v.end());
  return *it;
}

core::Result<Report> buildReport(SqliteDb& db, const LedgerFilter& filter, const std::vector<ReportKey>& by,
                                 const core::Calendar& calendar) {
  const Where w = whereOf(filter);
  // Columns 0..5 the text keys, 6 the start, 16 the id. Rows in id order,
  // so the attempts (keyed by request id) are read beside them in one
  // ordered scan: a merge join, far cheaper than a lookup per request.
  auto st = db.prepare(
      "SELECT r.agent, r.requested_model, r.served_model, r.provider, r.tier, r.run_id, r.started_unix_ms,"
      " r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens, r.cost_micro_usd,"
      " r.latency_us, r.ttft_us, r.outcome, r.usage_source, r.id"
      " FROM requests r WHERE 1" +
      w.sql + " ORDER BY r.id");
  if (!st) return std::unexpected(st.error());
  bindWhere(*st, filter, w);
  // The attempts from the first matching request's id on, opened at the
  // first row (rows come in id order: its id is the smallest).
  auto att = db.prepare("SELECT request, model FROM attempts WHERE request >= ?1 ORDER BY request, attempt");
  if (!att) return std::unexpected(att.error());
  std::optional<core::Error> att_error;
  bool att_open = false;
  bool att_row = false;
  auto advance = [&] {
    auto r = att->step();
    if (!r) att_error = r.error();
    att_row = r && *r;
  };

  Report report;
  report.by = by;
  std::vector<Acc> groups;
  std::unordered_map<std::string, size_t> index;
  Acc total;
  std::string key;
  std::vector<std::string> parts(by.size());
  int64_t cached_day_ms = INT64_MIN;  // the local day last seen, [start, end)
  int64_t cached_day_end = INT64_MIN;
  std::string cached_date;

  auto ok = eachRow(*st, [&](const SqliteStatement& s) {
    key.clear();
    for (const ReportKey k : by) {
      std::string_view v;
      switch (k) {
        case ReportKey::kAgent: v = s.view(0); break;
        case ReportKey::kModel: v = s.view(1); break;
        case ReportKey::kServedModel: v = s.view(2); break;
        case ReportKey::kProvider: v = s.view(3); break;
        case ReportKey::kTier: v = s.view(4); break;
        case ReportKey::kRun: v = s.view(5); break;
        case ReportKey::kDay: {
          const int64_t ms = s.int64(6);
          if (ms < cached_day_ms || ms >= cached_day_end) {
            const core::CalendarPeriod p = calendar.period(core::WallTime(std::chrono::milliseconds(ms)));
            cached_day_ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(p.day_start.time_since_epoch()).count();
            cached_day_end =
                std::chrono::duration_cast<std::chrono::milliseconds>(p.next_day.time_since_epoch()).count();
            cached_date = core::civilDate(p.day_key);
          }
          v = cached_date;
          break;
        }
      }
      key.append(v);
      key.push_back('\x1f');
    }
    auto [it, inserted] = index.try_emplace(key, groups.size());
    if (inserted && !by.empty()) {
      groups.emplace_back();
      size_t from = 0;
      for (size_t i = 0; i < by.size(); ++i) {
        const size_t end = key.find('\x1f', from);
        groups.back().row.key.push_back(key.substr(from, end - from));
        from = end + 1;
      }
    }
    const std::string_view outcome = s.view(14);
    const std::string_view source = s.view(15);
    const int64_t id = s.int64(16);
    if (!att_open) {
      att_open = true;
      att->bind(1, id);
      advance();
    }
    while (att_row && att->int64(0) < id) advance();
    int64_t attempts = 0;
    bool fell_back = false;
    const std::string_view served = s.view(2);
    while (att_row && att->int64(0) == id) {
      ++attempts;
      fell_back = fell_back || att->view(1) != served;
      advance();
    }
    const bool rejected = outcome.starts_with("rejected_");
    Acc* const in[] = {&total, by.empty() ? nullptr : &groups[it->second]};
    for (Acc* a : in) {
      if (!a) continue;
      ReportRow& r = a->row;
      ++r.calls;
      r.usage +=
          core::TokenUsage{.input = s.int64(7), .cached = s.int64(8), .output = s.int64(9), .reasoning = s.int64(10)};
      r.cost_micro_usd = core::addSaturating(r.cost_micro_usd, s.int64(11));
      if (rejected) {
        ++r.rejected;
        ++r.rejections[std::string(outcome.substr(9))];
      } else {
        a->latencies.push_back(s.int64(12));
        if (const int64_t ttft = s.int64(13); ttft >= 0) a->ttfts.push_back(ttft);
      }
      if (outcome == "client_abort") ++r.client_aborts;
      if (outcome == "upstream_error") ++r.upstream_errors;
      if (source != "provider" && source != "none") ++r.not_provider_usage;
      if (attempts > 1) r.retries += attempts - 1;
      r.fallbacks += fell_back ? 1 : 0;
    }
  });
  if (!ok) return std::unexpected(ok.error());
  if (att_error) return std::unexpected(*att_error);
  for (Acc& a : groups) finish(a);
  finish(total);
  std::sort(groups.begin(), groups.end(), [](const Acc& x, const Acc& y) { return x.row.key < y.row.key; });
  report.groups.reserve(groups.size());
  for (Acc& a : groups) report.groups.push_back(std::move(a.row));
  report.total = std::move(total.row);
  return report;
}

core::Result<void> forEachRequest(SqliteDb& db, const LedgerFilter& filter,
                                  const std::function<void(const SqliteStatement&)>& columns,
                                  const std::function<void(const SqliteStatement&)>& row) {
  const Where w = whereOf(filter);
  auto st = db.prepare("SELECT r.* FROM requests r WHERE 1" + w.sql + " ORDER BY r.started_unix_ms, r.id");
  if (!st) return std::unexpected(st.error());
  bindWhere(*st, filter, w);
  columns(*st);
  return eachRow(*st, [&](const SqliteStatement& s) { row(s); });
}

core::Result<SqliteStatement> prepareAttemptsOf(SqliteDb& db) {
  return db.prepare("SELECT * FROM attempts WHERE request = ?1 ORDER BY attempt");
}

core::Result<std::vector<ModelUsage>> usageByAgentModel(SqliteDb& db, const LedgerFilter& filter) {
  const Where w = whereOf(filter);
  auto st = db.prepare(
      "SELECT r.agent, a.model, count(DISTINCT a.request), sum(a.input_tokens), sum(a.cached_tokens),"
      " sum(a.output_tokens), sum(a.reasoning_tokens), sum(a.cost_micro_usd)"
      " FROM requests r JOIN attempts a ON a.request = r.id WHERE 1" +
      w.sql + " AND (a.cost_micro_usd > 0 OR a.input_tokens + a.output_tokens > 0) GROUP BY 1, 2 ORDER BY 1, 2");
  if (!st) return std::unexpected(st.error());
  bindWhere(*st, filter, w);
  std::vector<ModelUsage> out;
  auto ok = eachRow(*st, [&](const SqliteStatement& s) {
    out.push_back(
        ModelUsage{.agent = s.text(0),
                   .model = s.text(1),
                   .requests = s.int64(2),
                   .usage = {.input = s.int64(3), .cached = s.int64(4), .output = s.int64(5), .reasoning = s.int64(6)},
                   .cost_micro_usd = s.int64(7)});
  });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

core::Result<std::vector<SubstitutedUsage>> substitutedUsage(SqliteDb& db, const LedgerFilter& filter) {
  const Where w = whereOf(filter);
  auto st = db.prepare(
      "SELECT r.agent, r.requested_model, r.served_model, count(*), sum(r.input_tokens), sum(r.cached_tokens),"
      " sum(r.output_tokens), sum(r.reasoning_tokens), sum(r.cost_micro_usd)"
      " FROM requests r WHERE r.served_model <> r.requested_model AND r.served_model <> ''" +
      w.sql + " AND (r.cost_micro_usd > 0 OR r.input_tokens + r.output_tokens > 0) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
  if (!st) return std::unexpected(st.error());
  bindWhere(*st, filter, w);
  std::vector<SubstitutedUsage> out;
  auto ok = eachRow(*st, [&](const SqliteStatement& s) {
    out.push_back(SubstitutedUsage{
        .agent = s.text(0),
        .requested_model = s.text(1),
        .served_model = s.text(2),
        .requests = s.int64(3),
        .usage = {.input = s.int64(4), .cached = s.int64(5), .output = s.int64(6), .reasoning = s.int64(7)},
        .cost_micro_usd = s.int64(8)});
  });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

}  // namespace sluice::store
