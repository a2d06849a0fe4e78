#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/ledger_common.h"
#include "cli/table.h"
#include "core/time_text.h"
#include "store/report.h"

namespace sluice::cli {
namespace {

std::string ms(int64_t us) {
  if (us < 0) return "-";
  return fmt::format("{}.{}", us / 1000, (us % 1000) / 100);
}

std::string rejections(const store::ReportRow& r) {
  if (r.rejected == 0) return "0";
  std::string s = std::to_string(r.rejected) + " (";
  bool first = true;
  for (const auto& [reason, n] : r.rejections) {
    s += fmt::format("{}{} {}", first ? "" : ", ", reason, n);
    first = false;
  }
  return s + ")";
}

const std::vector<std::string> kColumns = {
    "calls",          "input_tokens",    "cached_tokens",  "output_tokens",     "reasoning_tokens", "cost_usd",
    "latency_p50_ms", "latency_p95_ms",  "latency_p99_ms", "ttft_p50_ms",       "rejected",         "retries",
    "fallbacks",      "upstream_errors", "client_aborts",  "not_provider_usage"};

std::vector<std::string> cells(const store::ReportRow& r, bool table) {
  auto n = [&](int64_t v) { return table ? grouped(v) : std::to_string(v); };
  return {n(r.calls),
          n(r.usage.input),
          n(r.usage.cached),
          n(r.usage.output),
          n(r.usage.reasoning),
          table ? usd(r.cost_micro_usd) : core::formatUsd(r.cost_micro_usd),
          ms(r.latency_p50_us),
          ms(r.latency_p95_us),
          ms(r.latency_p99_us),
          ms(r.ttft_p50_us),
          table ? rejections(r) : std::to_string(r.rejected),
          n(r.retries),
          n(r.fallbacks),
          n(r.upstream_errors),
          n(r.client_aborts),
          n(r.not_provider_usage)};
}

nlohmann::json toJson(const store::ReportRow& r) {
  auto p = [](int64_t us) { return us < 0 ? nlohmann::json(nullptr) : nlohmann::json(us); };
  return {{"calls", r.calls},
          {"input_tokens", r.usage.input},
          {"cached_tokens", r.usage.cached},
          {"output_tokens", r.usage.output},
          {"reasoning_tokens", r.usage.reasoning},
          {"cost_micro_usd", r.cost_micro_usd},
          {"cost_usd", core::formatUsd(r.cost_micro_usd)},
          {"latency_p50_us", p(r.latency_p50_us)},
          {"latency_p95_us", p(r.latency_p95_us)},
          {"latency_p99_us", p(r.latency_p99_us)},
          {"ttft_p50_us", p(r.ttft_p50_us)},
          {"rejected", r.rejected},
          {"rejections", r.rejections},
          {"retries", r.retries},
          {"fallbacks", r.fallbacks},
          {"upstream_errors", r.upstream_errors},
          {"client_aborts", r.client_aborts},
          {"not_provider_usage", r.not_provider_usage}};
}

}  // namespace

int reportCommand(const ReportOptions& o) {
  std::vector<store::ReportKey> by;
  for (const std::string& name : o.by) {
    auto k = store::reportKeyOf(name);
    if (!k) {
      fmt::print(stderr, "error: --by {}: expected agent, model, served-model, provider, tier, day or run\n", name);
      return 2;
    }
    by.push_back(*k);
  }
  if (o.format != "table" && o.format != "json" && o.format != "csv") {
    fmt::print(stderr, "error: --format {}: expected table, json or csv\n", o.format);
    return 2;
  }
  auto ctx = openLedgerContext(o.source, false);
  if (!ctx) return 1;
  auto filter = filterOf(o.filter, ctx->calendar, nowUnixMs());
  if (!filter) return 2;
  auto report = store::buildReport(*ctx->db, *filter, by, ctx->calendar);
  if (!report) {
    fmt::print(stderr, "error: {}\n", report.error().message);
    return 1;
  }
  std::vector<std::string> key_names;
  for (const auto k : by) key_names.emplace_back(store::toString(k));

  if (o.format == "json") {
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& g : report->groups) {
      nlohmann::json j = toJson(g);
      for (size_t i = 0; i < by.size(); ++i) j[key_names[i]] = g.key[i];
      groups.push_back(std::move(j));
    }
    nlohmann::json out = {{"ledger", ctx->path},
                          {"time_zone", ctx->calendar.zoneName()},
                          {"since_unix_ms",
                           filter->since_ms ? nlohmann::json(*filter->since_ms) : nlohmann::json(nullptr)},
                          {"until_unix_ms",
                           filter->until_ms ? nlohmann::json(*filter->until_ms) : nlohmann::json(nullptr)},
                          {"by", key_names},
                          {"groups", groups},
                          {"total", toJson(report->total)}};
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  if (o.format == "csv") {
    std::vector<std::string> header = key_names;
    header.insert(header.end(), kColumns.begin(), kColumns.end());
    fmt::print("{}\n", csvLine(header));
    for (const auto& g : report->groups) {
      std::vector<std::string> line = g.key;
      for (auto& c : cells(g, false)) line.push_back(std::move(c));
      fmt::print("{}\n", csvLine(line));
    }
    std::vector<std::string> line(by.size(), "");
    if (!line.empty()) line[0] = "TOTAL";
    for (auto& c : cells(report->total, false)) line.push_back(std::move(c));
    fmt::print("{}\n", csvLine(line));
    return 0;
  }
  Table t;
  std::vector<std::string> header;
  for (const auto& k : key_names) header.push_back(upper(k));
  for (const char* h : {"CALLS", "INPUT", "CACHED", "OUTPUT", "REASONING", "COST", "P50 MS", "P95 MS", "P99 MS",
                        "TTFT P50", "REJECTED", "RETRIES", "FALLBACKS", "UPSTREAM ERR", "ABORTS", "NOT PROVIDER"}) {
    header.emplace_back(h);
  }
  t.header(header, by.size());
  for (const auto& g : report->groups) {
    std::vector<std::string> line;
    for (const auto& k : g.key) line.push_back(k.empty() ? "-" : k);
    for (auto& c : cells(g, true)) line.push_back(std::move(c));
    t.row(line);
  }
  std::vector<std::string> line(by.size(), "");
  if (!line.empty()) line[0] = "TOTAL";
  for (auto& c : cells(report->total, true)) line.push_back(std::move(c));
  if (!report->groups.empty() && !by.empty()) t.rule();
  t.row(line);
  fmt::print("{}", t.str());
  return 0;
}

}  // namespace sluice::cli
