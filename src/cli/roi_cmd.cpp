#include <fmt/format.h>

#include <map>

#include "cli/commands.h"
#include "cli/ledger_common.h"
#include "cli/table.h"
#include "core/roi.h"
#include "store/report.h"

namespace sluice::cli {
namespace {

std::string percent(int64_t hundredths) {
  const bool neg = hundredths < 0;
  const int64_t a = neg ? -hundredths : hundredths;
  return fmt::format("{}{}.{:02} %", neg ? "-" : "", a / 100, a % 100);
}

std::string days(int64_t ms) {
  if (ms % 86'400'000 == 0) return fmt::format("{} d", ms / 86'400'000);
  return fmt::format("{:.4f} d ({} ms)", static_cast<double>(ms) / 86'400'000.0, ms);
}

// "ceil((uncached × input + cached × cached_input + output × output) / 10^6)".
std::string costFormula(const core::Price& p, const core::TokenUsage& u) {
  const int64_t cached = std::clamp<int64_t>(u.cached, 0, std::max<int64_t>(u.input, 0));
  return fmt::format("ceil(({} uncached input × {} + {} cached × {} + {} output × {}) / 10^6) µUSD",
                     grouped(std::max<int64_t>(u.input, 0) - cached), grouped(p.input), grouped(cached),
                     grouped(p.cached_input), grouped(std::max<int64_t>(u.output, 0)), grouped(p.output));
}

}  // namespace

int roiCommand(const RoiOptions& o) {
  std::map<std::string, std::string> map;
  for (const std::string& m : o.maps) {
    const size_t eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      fmt::print(stderr, "error: --map {}: expected FROM=TO (e.g. gpt-4.1=deepseek-v3.2)\n", m);
      return 2;
    }
    map[m.substr(0, eq)] = m.substr(eq + 1);
  }
  auto ctx = openLedgerContext(o.source, false);
  if (!ctx) return 1;
  auto prices = loadPrices(ctx->config);
  if (!prices) return 1;
  for (const auto& [from, to] : map) {
    if (!prices->contains(to)) {
      fmt::print(stderr, "error: --map {}={}: '{}' has no price (not in the catalog nor the config's models)\n", from,
                 to, to);
      return 2;
    }
  }
  const int64_t now = nowUnixMs();
  FilterOptions fo = o.filter;
  if (fo.since.empty()) fo.since = "30d";
  auto filter = filterOf(fo, ctx->calendar, now);
  if (!filter) return 2;
  const int64_t period_ms = filter->until_ms.value_or(now) - *filter->since_ms;
  if (period_ms <= 0) {
    fmt::print(stderr, "error: the period is empty (--since is not before --until)\n");
    return 2;
  }
  auto usage = store::usageByAgentModel(*ctx->db, *filter);
  if (!usage) {
    fmt::print(stderr, "error: {}\n", usage.error().message);
    return 1;
  }
  auto substituted = store::substitutedUsage(*ctx->db, *filter);
  if (!substituted) {
    fmt::print(stderr, "error: {}\n", substituted.error().message);
    return 1;
  }

  fmt::print("Replay of {} over {} ({} to {}), prices: {}\n", ctx->path, days(period_ms), fo.since,
             fo.until.empty() ? "now" : fo.until,
             ctx->config ? "the catalog with " + ctx->config->source_path + "'s models" : std::string("the catalog"));
  fmt::print("Monthly = the period's figure × 30 d / {}.\n\n", days(period_ms));

  Table t;
  t.header({"AGENT", "MODEL", "TO", "REQUESTS", "CURRENT", "PROJECTED", "SAVING", "SAVING %", "SAVING / MONTH"}, 3);
  core::MicroUsd total_current = 0, total_projected = 0;
  std::string explain;
  for (const store::ModelUsage& u : *usage) {
    auto it = map.find(u.model);
    core::MicroUsd projected = u.cost_micro_usd;
    std::string to = "-";
    if (it != map.end()) {
      to = it->second;
      projected = core::costOf(prices->at(to), u.usage);
    }
    const core::MicroUsd saving = u.cost_micro_usd - projected;
    total_current = core::addSaturating(total_current, u.cost_micro_usd);
    total_projected = core::addSaturating(total_projected, projected);
    t.row({u.agent.empty() ? "-" : u.agent, u.model, to, grouped(u.requests), usd(u.cost_micro_usd), usd(projected),
           usd(saving), percent(core::percentHundredths(saving, u.cost_micro_usd)),
           usd(core::perMonth(saving, period_ms))});
    if (o.explain && it != map.end()) {
      explain += fmt::format("{} / {} → {} ({} requests; {} input of which {} cached, {} output tokens)\n",
                             u.agent.empty() ? "-" : u.agent, u.model, to, grouped(u.requests), grouped(u.usage.input),
                             grouped(u.usage.cached), grouped(u.usage.output));
      explain += fmt::format("  current   {:>18} = {} µUSD, the ledger's cost of these attempts\n",
                             usd(u.cost_micro_usd), grouped(u.cost_micro_usd));
      explain += fmt::format("  projected {:>18} = {} at {}'s price = {} µUSD\n", usd(projected),
                             costFormula(prices->at(to), u.usage), to, grouped(projected));
      explain += fmt::format("  saving    {:>18} = {} − {} µUSD; {} = {} / {}\n", usd(saving),
                             grouped(u.cost_micro_usd), grouped(projected),
                             percent(core::percentHundredths(saving, u.cost_micro_usd)), grouped(saving),
                             grouped(u.cost_micro_usd));
      explain += fmt::format("  monthly   {:>18} = {} µUSD × 30 d / {}\n", usd(core::perMonth(saving, period_ms)),
                             grouped(saving), days(period_ms));
    }
  }
  const core::MicroUsd total_saving = total_current - total_projected;
  t.rule();
  t.row({"TOTAL", "", "", "", usd(total_current), usd(total_projected), usd(total_saving),
         percent(core::percentHundredths(total_saving, total_current)), usd(core::perMonth(total_saving, period_ms))});
  fmt::print("{}", t.str());
  fmt::print("\nCurrent cost per month: {} (= {} × 30 d / {}); projected: {}.\n",
             usd(core::perMonth(total_current, period_ms)), usd(total_current), days(period_ms),
             usd(core::perMonth(total_projected, period_ms)));
  if (!explain.empty()) fmt::print("\n{}", explain);

  fmt::print("\nSavings already realised (requests served by another model than the one asked for):\n");
  if (substituted->empty()) {
    fmt::print("none in the period\n");
    return 0;
  }
  Table r;
  r.header({"AGENT", "REQUESTED", "SERVED", "REQUESTS", "REQUESTED WOULD COST", "SERVED COST", "REALISED", "REALISED %",
            "REALISED / MONTH"},
           3);
  core::MicroUsd total_would = 0, total_actual = 0;
  std::string explain_realised;
  for (const store::SubstitutedUsage& s : *substituted) {
    auto price = prices->find(s.requested_model);
    if (price == prices->end()) {
      r.row({s.agent, s.requested_model, s.served_model, grouped(s.requests), "(no price)", usd(s.cost_micro_usd), "-",
             "-", "-"});
      continue;
    }
    const core::MicroUsd would = core::costOf(price->second, s.usage);
    const core::MicroUsd realised = would - s.cost_micro_usd;
    total_would = core::addSaturating(total_would, would);
    total_actual = core::addSaturating(total_actual, s.cost_micro_usd);
    r.row({s.agent.empty() ? "-" : s.agent, s.requested_model, s.served_model, grouped(s.requests), usd(would),
           usd(s.cost_micro_usd), usd(realised), percent(core::percentHundredths(realised, would)),
           usd(core::perMonth(realised, period_ms))});
    if (o.explain) {
      explain_realised += fmt::format("{} / {} served by {} ({} requests)\n", s.agent.empty() ? "-" : s.agent,
                                      s.requested_model, s.served_model, grouped(s.requests));
      explain_realised += fmt::format("  would cost {:>18} = {} at {}'s price = {} µUSD\n", usd(would),
                                      costFormula(price->second, s.usage), s.requested_model, grouped(would));
      explain_realised += fmt::format("  cost       {:>18} = {} µUSD, the ledger's cost of these requests\n",
                                      usd(s.cost_micro_usd), grouped(s.cost_micro_usd));
      explain_realised += fmt::format("  realised   {:>18} = {} − {} µUSD; × 30 d / {} = {} a month\n", usd(realised),
                                      grouped(would), grouped(s.cost_micro_usd), days(period_ms),
                                      usd(core::perMonth(realised, period_ms)));
    }
  }
  r.rule();
  const core::MicroUsd total_realised = total_would - total_actual;
  r.row({"TOTAL", "", "", "", usd(total_would), usd(total_actual), usd(total_realised),
         percent(core::percentHundredths(total_realised, total_would)),
         usd(core::perMonth(total_realised, period_ms))});
  fmt::print("{}", r.str());
  if (!explain_realised.empty()) fmt::print("\n{}", explain_realised);
  return 0;
}

}  // namespace sluice::cli
