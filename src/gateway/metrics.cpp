#include "gateway/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace sluice::gateway {
namespace {

constexpr char kSep = '\x1f';  // joins label values in a key (never in a config name)

// Splits a key made by joining with kSep.
std::vector<std::string_view> splitKey(std::string_view key) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= key.size(); ++i) {
    if (i == key.size() || key[i] == kSep) {
      out.push_back(key.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// A label value as the exposition format wants it: \ " and newline escaped.
void appendLabelValue(std::string& out, std::string_view v) {
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              std::string_view value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        appendLabelValue(out_, v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }

 private:
  std::string& out_;
};

std::string num(uint64_t v) { return std::to_string(v); }
std::string num(int64_t v) { return std::to_string(v); }
std::string usd(int64_t micro) { return fmt::format("{:.6f}", static_cast<double>(micro) / 1e6); }
std::string seconds(double s) { return fmt::format("{}", s); }

void renderHistogram(Writer& w, std::string_view name, std::string_view help, const LatencyHistogram& h) {
  w.family(name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    cumulative += h.buckets[i];
    w.sample(bucket, {{"le", seconds(kLatencyBuckets[i])}}, num(cumulative));
  }
  w.sample(bucket, {{"le", "+Inf"}}, num(h.count));
  w.sample(std::string(name) + "_sum", {}, seconds(h.sum_seconds));
  w.sample(std::string(name) + "_count", {}, num(h.count));
}

}  // namespace

void LatencyHistogram::observe(double s) {
  ++count;
  sum_seconds += s;
  const auto it = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), s);
  if (it != kLatencyBuckets.end()) ++buckets[static_cast<size_t>(it - kLatencyBuckets.begin())];
}

void LatencyHistogram::add(const LatencyHistogram& o) {
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
  count += o.count;
  sum_seconds += o.sum_seconds;
}

MetricsShard::RequestCounts& MetricsShard::requestEntry(const store::UsageRecord& r, const CompiledConfig& config) {
  if (last_request_ != nullptr && last_config_ == &config && r.outcome == last_outcome_ && r.agent == last_agent_ &&
      r.served_model == last_model_ && r.provider == last_provider_) {
    return *last_request_;
  }
  // Only names the config knows become label values.
  const std::string_view agent = config.agent(r.agent) != nullptr ? std::string_view(r.agent) : std::string_view();
  const std::string_view model = config.model(r.served_model) != nullptr ? std::string_view(r.served_model)
                                                                         : std::string_view();
  const std::string_view provider = config.providers.contains(r.provider) ? std::string_view(r.provider)
                                                                          : std::string_view();
  key_.clear();
  key_.append(agent).append(1, kSep).append(model).append(1, kSep).append(provider).append(1, kSep).append(
      store::toString(r.outcome));
  auto it = requests_.find(std::string_view(key_));
  if (it == requests_.end()) it = requests_.emplace(key_, RequestCounts{}).first;
  if (last_config_ != &config) last_attempt_ = nullptr;
  last_config_ = &config;
  last_agent_ = r.agent;
  last_model_ = r.served_model;
  last_provider_ = r.provider;
  last_outcome_ = r.outcome;
  last_request_ = &it->second;
  return it->second;
}

MetricsShard::AttemptCounts& MetricsShard::attemptEntry(const store::Attempt& a, const CompiledConfig& config) {
  if (last_attempt_ != nullptr && a.provider == last_attempt_provider_ && a.model == last_attempt_model_) {
    return *last_attempt_;
  }
  const std::string_view provider = config.providers.contains(a.provider) ? std::string_view(a.provider) : "";
  const std::string_view model = config.model(a.model) != nullptr ? std::string_view(a.model) : "";
  key_.clear();
  key_.append(provider).append(1, kSep).append(model);
  auto it = attempts_.find(std::string_view(key_));
  if (it == attempts_.end()) it = attempts_.emplace(key_, AttemptCounts{}).first;
  last_attempt_provider_ = a.provider;
  last_attempt_model_ = a.model;
  last_attempt_ = &it->second;
  return it->second;
}

void MetricsShard::record(const store::UsageRecord& r, const CompiledConfig& config) {
  std::lock_guard lock(mu_);
  RequestCounts& c = requestEntry(r, config);
  ++c.requests;
  c.input = core::addSaturating(c.input, r.usage.input);
  c.cached = core::addSaturating(c.cached, r.usage.cached);
  c.output = core::addSaturating(c.output, r.usage.output);
  c.reasoning = core::addSaturating(c.reasoning, r.usage.reasoning);
  c.cost_micro_usd = core::addSaturating(c.cost_micro_usd, r.cost_micro_usd);
  for (size_t i = 0; i < r.attempts.size(); ++i) {
    const store::Attempt& a = r.attempts[i];
    AttemptCounts& at = attemptEntry(a, config);
    // An attempt that was not made (an open breaker, no budget for it) has
    // no status and no usage.
    const bool skipped = a.http_status == 0 && (a.error == "breaker_open" || a.error == "budget_exhausted");
    if (skipped) {
      ++at.skipped;
    } else if (a.error.empty()) {
      ++at.ok;
    } else {
      ++at.failed;
    }
    if (i > 0) {
      if (a.model == r.attempts[i - 1].model) {
        ++retries_;
      } else {
        ++fallbacks_;
      }
    }
  }
  latency_.observe(static_cast<double>(r.latency_us) / 1e6);
  if (r.stream && r.ttft_us > 0) ttft_.observe(static_cast<double>(r.ttft_us) / 1e6);
}

MetricsShard& Metrics::addShard() {
  std::lock_guard lock(mu_);
  shards_.push_back(std::make_unique<MetricsShard>());
  return *shards_.back();
}

std::string Metrics::render(const MetricsSources& sources) const {
  const MetricsSources& src = sources;
  // Merge the shards (sorted, so the output is stable).
  std::map<std::string, MetricsShard::RequestCounts, std::less<>> requests;
  std::map<std::string, MetricsShard::AttemptCounts, std::less<>> attempts;
  uint64_t retries = 0, fallbacks = 0;
  LatencyHistogram latency, ttft;
  {
    std::lock_guard lock(mu_);
    for (const auto& shard : shards_) {
      std::lock_guard shard_lock(shard->mu_);
      for (const auto& [k, v] : shard->requests_) {
        auto& c = requests[k];
        c.requests += v.requests;
        c.input = core::addSaturating(c.input, v.input);
        c.cached = core::addSaturating(c.cached, v.cached);
        c.output = core::addSaturating(c.output, v.output);
        c.reasoning = core::addSaturating(c.reasoning, v.reasoning);
        c.cost_micro_usd = core::addSaturating(c.cost_micro_usd, v.cost_micro_usd);
      }
      for (const auto& [k, v] : shard->attempts_) {
        auto& c = attempts[k];
        c.ok += v.ok;
        c.failed += v.failed;
        c.skipped += v.skipped;
      }
      retries += shard->retries_;
      fallbacks += shard->fallbacks_;
      latency.add(shard->latency_);
      ttft.add(shard->ttft_);
    }
  }

  std::string out;
  out.reserve(16 * 1024);
  Writer w(out);
  w.family("sluice_build_info", "gauge", "The running Sluice's version.");
  w.sample("sluice_build_info", {{"version", kSluiceVersion}}, "1");
  if (src.config != nullptr) {
    w.family("sluice_config_info", "gauge", "The config version the gateway runs (a hash of its file).");
    w.sample("sluice_config_info", {{"config_version", src.config->config_version}}, "1");
  }

  w.family("sluice_requests_total", "counter", "Requests answered, by agent, served model, provider and outcome.");
  for (const auto& [k, c] : requests) {
    const auto l = splitKey(k);
    w.sample("sluice_requests_total", {{"agent", l[0]}, {"model", l[1]}, {"provider", l[2]}, {"outcome", l[3]}},
             num(c.requests));
  }
  // Tokens and cost by agent and served model (outcomes summed).
  std::map<std::pair<std::string, std::string>, MetricsShard::RequestCounts> by_agent_model;
  for (const auto& [k, c] : requests) {
    const auto l = splitKey(k);
    auto& s = by_agent_model[{std::string(l[0]), std::string(l[1])}];
    s.input = core::addSaturating(s.input, c.input);
    s.cached = core::addSaturating(s.cached, c.cached);
    s.output = core::addSaturating(s.output, c.output);
    s.reasoning = core::addSaturating(s.reasoning, c.reasoning);
    s.cost_micro_usd = core::addSaturating(s.cost_micro_usd, c.cost_micro_usd);
  }
  w.family("sluice_tokens_total", "counter",
           "Tokens billed, by agent, served model and kind (input includes cached; output includes reasoning).");
  for (const auto& [am, c] : by_agent_model) {
    for (const auto& [kind, v] : {std::pair<std::string_view, int64_t>{"input", c.input},
                                  {"cached", c.cached},
                                  {"output", c.output},
                                  {"reasoning", c.reasoning}}) {
      w.sample("sluice_tokens_total", {{"agent", am.first}, {"model", am.second}, {"kind", kind}}, num(v));
    }
  }
  w.family("sluice_cost_usd_total", "counter", "What the requests cost, in US dollars, by agent and served model.");
  for (const auto& [am, c] : by_agent_model) {
    w.sample("sluice_cost_usd_total", {{"agent", am.first}, {"model", am.second}}, usd(c.cost_micro_usd));
  }

  w.family("sluice_upstream_attempts_total", "counter",
           "Upstream attempts by provider, model and result (ok, failed, skipped: an open breaker or no budget).");
  for (const auto& [k, c] : attempts) {
    const auto l = splitKey(k);
    for (const auto& [result, v] :
         {std::pair<std::string_view, uint64_t>{"ok", c.ok}, {"failed", c.failed}, {"skipped", c.skipped}}) {
      w.sample("sluice_upstream_attempts_total", {{"provider", l[0]}, {"model", l[1]}, {"result", result}}, num(v));
    }
  }
  w.family("sluice_upstream_retries_total", "counter", "Attempts that retried the model of the attempt before.");
  w.sample("sluice_upstream_retries_total", {}, num(retries));
  w.family("sluice_upstream_fallbacks_total", "counter", "Attempts that fell back to another model.");
  w.sample("sluice_upstream_fallbacks_total", {}, num(fallbacks));

  renderHistogram(w, "sluice_request_duration_seconds", "Time from a request's arrival to its last byte.", latency);
  renderHistogram(w, "sluice_time_to_first_token_seconds", "Time from a streamed request's arrival to its first token.",
                  ttft);

  w.family("sluice_requests_in_flight", "gauge", "Requests being served now.");
  w.sample("sluice_requests_in_flight", {}, num(src.in_flight));
  w.family("sluice_usage_clamped_total", "counter",
           "Provider usage reports above what the request made possible, billed at the bound.");
  w.sample("sluice_usage_clamped_total", {}, num(src.usage_clamped));

  if (src.config != nullptr && src.breakers != nullptr) {
    // Every (provider, model) the config routes to: 0 closed, 1 open, 2 half-open.
    w.family("sluice_breaker_state", "gauge",
             "Circuit breaker state by provider and model: 0 closed, 1 open, 2 half-open.");
    std::set<std::pair<std::string, std::string>> pairs;
    for (const auto& [name, m] : src.config->config->models) {
      if (!m.provider.empty() && src.config->providers.contains(m.provider)) pairs.emplace(m.provider, name);
    }
    for (const auto& [provider, model] : pairs) {
      const core::BreakerState s = src.breakers->state(src.breakers->key(provider, model));
      const int v = s == core::BreakerState::kClosed ? 0 : (s == core::BreakerState::kOpen ? 1 : 2);
      w.sample("sluice_breaker_state", {{"provider", provider}, {"model", model}}, std::to_string(v));
    }
  }

  if (src.config != nullptr && src.budgets != nullptr) {
    // Each configured scope's windows: spent, and for a limited one its limit and what is left.
    std::vector<core::ScopeId> scopes{src.config->global_scope};
    std::set<std::string> tiers_seen;
    std::vector<std::pair<std::string, const AgentRuntime*>> agents;
    for (const auto& [name, a] : src.config->agents) agents.emplace_back(name, &a);
    std::sort(agents.begin(), agents.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [name, a] : agents) {
      if (a->tier_scope && tiers_seen.insert(a->tier).second) scopes.push_back(*a->tier_scope);
      scopes.push_back(a->agent_scope);
    }
    struct Row {
      std::string scope, window;
      core::WindowUsage usage;
    };
    std::vector<Row> rows;
    for (const core::ScopeId id : scopes) {
      auto u = src.budgets->usage(id);
      if (!u) continue;
      for (const auto& [window, wu] : {std::pair<std::string_view, const core::WindowUsage*>{"minute", &u->minute},
                                       {"day", &u->day},
                                       {"month", &u->month},
                                       {"total", &u->total}}) {
        rows.push_back(Row{u->name, std::string(window), *wu});
      }
    }
    w.family("sluice_budget_spent_usd", "gauge", "Spend in the budget scope's current window, in US dollars.");
    for (const auto& r : rows)
      w.sample("sluice_budget_spent_usd", {{"scope", r.scope}, {"window", r.window}}, usd(r.usage.usd.spent));
    w.family("sluice_budget_limit_usd", "gauge",
             "The scope's limit for the window, in US dollars (limited scopes only).");
    for (const auto& r : rows) {
      if (r.usage.usd.limit) {
        w.sample("sluice_budget_limit_usd", {{"scope", r.scope}, {"window", r.window}}, usd(*r.usage.usd.limit));
      }
    }
    w.family("sluice_budget_remaining_usd", "gauge",
             "What is left of the window's limit after spend and reservations in flight, in US dollars.");
    for (const auto& r : rows) {
      if (r.usage.usd.remaining) {
        w.sample("sluice_budget_remaining_usd", {{"scope", r.scope}, {"window", r.window}},
                 usd(*r.usage.usd.remaining));
      }
    }
    w.family("sluice_budget_spent_tokens", "gauge", "Tokens spent in the budget scope's current window.");
    for (const auto& r : rows) {
      w.sample("sluice_budget_spent_tokens", {{"scope", r.scope}, {"window", r.window}}, num(r.usage.tokens.spent));
    }
    w.family("sluice_budget_remaining_tokens", "gauge",
             "What is left of the window's token limit after spend and reservations in flight (limited scopes only).");
    for (const auto& r : rows) {
      if (r.usage.tokens.remaining) {
        w.sample("sluice_budget_remaining_tokens", {{"scope", r.scope}, {"window", r.window}},
                 num(*r.usage.tokens.remaining));
      }
    }
  }

  if (src.usage != nullptr) {
    const store::UsageSinkStats s = src.usage->stats();
    w.family("sluice_usage_backlog_bytes", "gauge", "Usage records encoded and not yet written to the ledger.");
    w.sample("sluice_usage_backlog_bytes", {}, num(s.backlog_bytes));
    w.family("sluice_usage_dropped_total", "counter", "Usage records refused because the writer's backlog was full.");
    w.sample("sluice_usage_dropped_total", {}, num(s.dropped));
    w.family("sluice_usage_writer_failing", "gauge", "1 while usage records cannot be written (readyz answers 503).");
    w.sample("sluice_usage_writer_failing", {}, src.usage->problem() ? "1" : "0");
  }
  return out;
}

}  // namespace sluice::gateway
