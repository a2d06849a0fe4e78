// summarize(): the human summary `sluice check` prints after a successful load.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/loader.h"
#include "config/yaml_walker.h"

namespace sluice::config {
namespace {

// "$5.00", "$0.028", "$100.00": cents always shown, extra decimals only when set.
std::string money(core::MicroUsd v) {
  std::string s = formatDecimal6(v);
  const size_t dot = s.find('.');
  if (dot == std::string::npos) {
    s += ".00";
  } else if (s.size() - dot == 2) {
    s += "0";
  }
  return "$" + s;
}

std::vector<std::string> describeLimits(const Limits& l) {
  std::vector<std::string> out;
  const auto usd = [&](const std::optional<core::MicroUsd>& v, std::string_view per) {
    if (v) out.push_back(fmt::format("{}/{}", money(*v), per));
  };
  const auto count = [&](const std::optional<int64_t>& v, std::string_view what) {
    if (v) out.push_back(fmt::format("{} {}", *v, what));
  };
  usd(l.usd_per_call, "call");
  usd(l.usd_per_minute, "min");
  usd(l.usd_per_day, "day");
  usd(l.usd_per_month, "month");
  count(l.tokens_per_call, "tokens/call");
  count(l.tokens_per_minute, "tokens/min");
  count(l.tokens_per_day, "tokens/day");
  count(l.tokens_per_month, "tokens/month");
  count(l.calls_per_minute, "calls/min");
  count(l.calls_per_day, "calls/day");
  count(l.calls_per_month, "calls/month");
  return out;
}

std::string joinOrNone(const std::vector<std::string>& parts, std::string_view none) {
  return parts.empty() ? std::string(none) : fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace

std::string summarize(const Config& c) {
  std::string out;
  out += fmt::format("config {} (version {})\n", c.source_path.empty() ? "<string>" : c.source_path,
                     c.hash.substr(0, 12));
  out += fmt::format("server: listen {}, state {}, ledger {}\n", c.server.listen, c.storage.state, c.storage.ledger);

  std::vector<std::string> providers;
  for (const auto& [name, p] : c.providers) {
    providers.push_back(p.kind == ProviderKind::kMock ? fmt::format("{} (mock)", name)
                                                      : fmt::format("{} ({})", name, p.base_url));
  }
  out += fmt::format("providers ({}): {}\n", providers.size(), joinOrNone(providers, "none"));

  size_t from_catalog = 0;
  for (const auto& [name, m] : c.models) from_catalog += m.price_source == "catalog" ? 1 : 0;
  out += fmt::format("models: {} routable ({} at catalog prices, {} priced in config)\n", c.models.size(), from_catalog,
                     c.models.size() - from_catalog);

  std::vector<std::string> profiles;
  for (const auto& [name, p] : c.profiles) {
    profiles.push_back(name == c.active_profile ? fmt::format("{} (active)", name) : name);
  }
  out += fmt::format("profiles: {}\n", joinOrNone(profiles, "none"));

  out += fmt::format("agents ({}):\n", c.agents.size());
  for (const auto& [name, a] : c.agents) {
    std::vector<std::string> parts;
    parts.push_back(a.tier.empty() ? "no tier" : fmt::format("tier {}", a.tier));
    if (a.rpm) parts.push_back(fmt::format("rpm {}", *a.rpm));
    if (a.tpm) parts.push_back(fmt::format("tpm {}", *a.tpm));
    if (a.max_tokens_per_call) parts.push_back(fmt::format("max {} tokens/call", *a.max_tokens_per_call));
    for (auto& l : describeLimits(a.limits)) parts.push_back(std::move(l));
    parts.push_back(a.models.empty() ? "any model" : fmt::format("models {}", fmt::join(a.models, " ")));
    out += fmt::format("  {}: {}\n", name, fmt::join(parts, ", "));
  }

  const auto& b = c.budgets;
  out += fmt::format("budgets: global {}\n", joinOrNone(describeLimits(b.global), "unlimited"));
  for (const auto& [name, t] : b.tiers) {
    std::vector<std::string> parts;
    if (t.share_ppm > 0) parts.push_back(fmt::format("share {}", formatDecimal6(t.share_ppm)));
    for (auto& l : describeLimits(t.limits)) parts.push_back(std::move(l));
    out += fmt::format("  tier {}: {}\n", name, joinOrNone(parts, "no limits"));
  }
  if (b.run) {
    std::vector<std::string> parts;
    if (b.run->usd) parts.push_back(money(*b.run->usd));
    if (b.run->calls) parts.push_back(fmt::format("{} calls", *b.run->calls));
    parts.push_back(fmt::format("ttl {}s", b.run->ttl_s));
    out += fmt::format("  run: {}\n", fmt::join(parts, ", "));
  }
  out += fmt::format("  on_short_budget {}, time zone {}\n",
                     b.on_short_budget == ShortBudgetPolicy::kClamp ? "clamp" : "reject", b.time_zone);
  if (c.unknown_model_price) {
    out += fmt::format("unknown models: priced at {} in, {} out per 1M tokens\n", money(c.unknown_model_price->input),
                       money(c.unknown_model_price->output));
  } else {
    out += "unknown models: refused\n";
  }
  return out;
}

}  // namespace sluice::config
