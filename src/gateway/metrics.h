#pragma once
/// @file
/// @brief Prometheus metrics (GET /metrics, text exposition format 0.0.4).
///
/// What requests did is counted from their usage records, per event loop:
/// each Worker owns a MetricsShard with its own mutex, which only a scrape
/// contends for. What things are now (breakers, budgets, the usage writer)
/// is read at scrape time. Every label value comes from the config (agents,
/// models, providers, budget scopes) or from a fixed set (outcomes, token
/// kinds, windows); a name a client sent that the config does not know is
/// counted under "" — so the series stay bounded, and no key material is
/// ever a label.

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/breaker.h"
#include "core/budget.h"
#include "core/string_hash.h"
#include "gateway/compiled_config.h"
#include "store/usage.h"

namespace sluice::gateway {

/// Upper bounds of the latency histograms' buckets, in seconds.
inline constexpr std::array<double, 17> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                           1,     2.5,    5,     10,   30,    60,   120, 300};

/// A cumulative histogram over kLatencyBuckets.
struct LatencyHistogram {
  std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // observations <= each bound (not cumulative yet)
  uint64_t count = 0;
  double sum_seconds = 0;
  void observe(double seconds);
  void add(const LatencyHistogram& other);
};

/// The counters of one event loop.
class MetricsShard {
 public:
  /// Counts one finished request from its usage record; names the config
  /// does not know are counted under "".
  void record(const store::UsageRecord& record, const CompiledConfig& config);

 private:
  friend class Metrics;
  struct RequestCounts {
    uint64_t requests = 0;
    int64_t input = 0, cached = 0, output = 0, reasoning = 0;
    int64_t cost_micro_usd = 0;
  };
  struct AttemptCounts {
    uint64_t ok = 0, failed = 0, skipped = 0;
  };
  using Map = std::unordered_map<std::string, RequestCounts, core::StringHash, std::equal_to<>>;
  using AttemptMap = std::unordered_map<std::string, AttemptCounts, core::StringHash, std::equal_to<>>;

  mutable std::mutex mu_;
  Map requests_;          // key: agent \x1f model \x1f provider \x1f outcome
  AttemptMap attempts_;   // key: provider \x1f model
  uint64_t retries_ = 0;  // attempts of the same model after a failed one
  uint64_t fallbacks_ = 0;
  LatencyHistogram latency_;
  LatencyHistogram ttft_;
  std::string key_;  // scratch
  // The entries the previous record counted into, by the names it carried:
  // consecutive requests mostly share them, and then skip the config
  // lookups and the hash. Reset when the config changes.
  const CompiledConfig* last_config_ = nullptr;
  std::string last_agent_, last_model_, last_provider_;
  store::Outcome last_outcome_ = store::Outcome::kOk;
  RequestCounts* last_request_ = nullptr;
  std::string last_attempt_provider_, last_attempt_model_;
  AttemptCounts* last_attempt_ = nullptr;
  RequestCounts& requestEntry(const store::UsageRecord& record, const CompiledConfig& config);
  AttemptCounts& attemptEntry(const store::Attempt& attempt, const CompiledConfig& config);
};

/// What a scrape reads besides the shards.
struct MetricsSources {
  const CompiledConfig* config = nullptr;
  const core::BudgetEngine* budgets = nullptr;
  core::BreakerRegistry* breakers = nullptr;
  const store::UsageSink* usage = nullptr;
  uint64_t in_flight = 0;
  uint64_t usage_clamped = 0;
};

class Metrics {
 public:
  /// A shard for one event loop; lives as long as this.
  [[nodiscard]] MetricsShard& addShard();
  /// The exposition text.
  [[nodiscard]] std::string render(const MetricsSources& sources) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MetricsShard>> shards_;
};

/// The version `sluice --version` and sluice_build_info report.
inline constexpr std::string_view kSluiceVersion = "0.1.0";

}  // namespace sluice::gateway
