#pragma once
/// @file
/// @brief The gateway: shared decision state plus one Worker per event loop.
///
/// Request path (exchange.cpp runs the stages, each in its own file, in
/// this order): listen → parse → authenticate → inspect → route → admit →
/// attempt loop → relay → settle → usage record.
/// Shared state (budgets, rate limits, breakers) is thread-safe in core/;
/// config and keys are published read-mostly values (published.h); upstream
/// connection pools are per loop, so a request never takes a lock outside
/// core's short critical sections.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/breaker.h"
#include "core/budget.h"
#include "core/clock.h"
#include "core/rate_limit.h"
#include "gateway/admission.h"
#include "gateway/compiled_config.h"
#include "gateway/key_index.h"
#include "gateway/metrics.h"
#include "gateway/published.h"
#include "net/http.h"
#include "store/counters.h"
#include "store/usage.h"

namespace sluice::gateway {

class Worker;

struct GatewayDeps {
  const core::Clock* clock = &core::SystemClock::instance();
  std::shared_ptr<const config::Config> config;
  std::unique_ptr<store::KeyStore> keys;
  std::shared_ptr<store::UsageSink> usage;
  /// Budget counters survive restarts through this (optional).
  std::unique_ptr<store::CounterStore> counters;
  /// What the durable ledger records as spent in the current windows
  /// (store::ledgerSpend): at start, after the saved counters are restored,
  /// each window is raised to at least this, so spend admitted after the
  /// last counter save (a crash) is not granted again. Optional; an error
  /// fails create().
  std::function<core::Result<std::vector<core::SavedCounter>>(const core::Calendar&, core::WallTime now,
                                                              core::Nanos run_ttl)>
      spend_floor;
  /// Resolves environment variables (provider keys). Defaults to getenv.
  std::function<std::optional<std::string>(const std::string&)> env;
  /// Budget reservations in flight, all requests together (the engine's
  /// table); a request over it is answered 503 server_overloaded.
  size_t max_reservations = 1'000'000;
  /// Serves the providers of `kind: mock` (the app passes mock::MockProvider).
  /// Without it, a config naming such a provider is refused.
  std::shared_ptr<net::InProcessProvider> mock_provider;
  /// Makes the admission control (rate limits and reservations) over the
  /// gateway's budget engine and rate limiter. Default: the in-process one,
  /// which answers at once; tests pass one that answers a loop turn later,
  /// as a budget store across the network would.
  std::function<std::unique_ptr<AdmissionControl>(core::BudgetEngine&, core::RateLimiter&)> admission;
};

/// Counters for logs and tests.
struct GatewayStats {
  std::atomic<uint64_t> in_flight{0};
  /// Provider usage reports cut down to what the request made possible.
  std::atomic<uint64_t> usage_clamped{0};
};

class Gateway {
 public:
  static core::Result<std::unique_ptr<Gateway>> create(GatewayDeps deps);
  ~Gateway();

  /// What to give the HTTP server: requests go to the worker of their loop
  /// (created lazily, on that loop's thread): their heads first, to refuse a
  /// request without a valid key before its body is read
  /// (Worker::checkHead), then whole requests; and so do the answers the
  /// server writes itself, to be traced (Worker::traceServerAnswer).
  [[nodiscard]] std::shared_ptr<net::RequestHandler> httpHandler();
  /// Requests only (tests that drive the pipeline without a server).
  [[nodiscard]] net::Handler handler();

  /// Applies a new configuration (SIGHUP). Counters are kept. The running
  /// config stays if the new one cannot be applied.
  core::Result<void> reload(const std::shared_ptr<const config::Config>& config);

  /// Periodic upkeep off the request path (call about once a second from a
  /// maintenance thread): key refresh, expired reservations, idle limiters,
  /// and every few seconds a save of the budget counters.
  void maintain();

  /// Saves the budget counters now (also at shutdown, after the drain).
  core::Result<void> saveCounters();

  /// After this, /readyz answers 503 (load balancers stop sending) and new
  /// API requests get a retryable 503; requests in flight go on.
  void setDraining() { draining_ = true; }

  /// Shutdown, step 2 (after draining): on every loop, destroys the upstream
  /// pools, cancelling what is still running (those requests are settled and
  /// recorded as usual). Blocks until done. The loops must still be running.
  void releaseUpstreams(const std::vector<net::Dispatcher*>& loops);
  [[nodiscard]] bool draining() const { return draining_; }

  // Shared state, used by Workers and Exchanges.
  [[nodiscard]] const core::Clock& clock() const { return *clock_; }
  [[nodiscard]] core::BudgetEngine& budgets() { return *budgets_; }
  [[nodiscard]] core::RateLimiter& rateLimiter() { return rate_; }
  [[nodiscard]] core::BreakerRegistry& breakers() { return *breakers_; }
  /// Rate limits and budget reservations, as the request path asks for them.
  [[nodiscard]] AdmissionControl& admission() { return *admission_; }
  [[nodiscard]] store::UsageSink& usage() { return *usage_; }
  [[nodiscard]] const Published<CompiledConfig>& config() const { return *config_; }
  [[nodiscard]] const Published<KeyMap>& keys() const { return keys_->published(); }
  /// What serves the providers of `kind: mock` (may be null).
  [[nodiscard]] net::InProcessProvider* mockProvider() const { return mock_provider_.get(); }
  [[nodiscard]] GatewayStats& stats() { return stats_; }
  /// Prometheus metrics (each Worker counts into its own shard).
  [[nodiscard]] Metrics& metrics() { return metrics_; }
  /// The /metrics exposition text, now.
  [[nodiscard]] std::string renderMetrics();

 private:
  class HttpEntry;
  Gateway() = default;
  Worker& workerFor(net::Dispatcher& loop);

  const core::Clock* clock_ = nullptr;
  std::function<std::optional<std::string>(const std::string&)> env_;
  std::unique_ptr<core::BudgetEngine> budgets_;
  core::RateLimiter rate_;
  std::unique_ptr<core::BreakerRegistry> breakers_;
  std::unique_ptr<AdmissionControl> admission_;
  std::unique_ptr<KeyIndex> keys_;
  std::unique_ptr<store::CounterStore> counters_;
  int maintain_ticks_ = 0;
  std::shared_ptr<store::UsageSink> usage_;
  std::unique_ptr<Published<CompiledConfig>> config_;
  std::shared_ptr<net::InProcessProvider> mock_provider_;
  std::atomic<bool> draining_{false};
  GatewayStats stats_;
  Metrics metrics_;
  std::mutex maintain_mu_;
  std::mutex workers_mu_;  // creation only; lookups use a thread_local cache
  // Identifies this gateway in that cache: a later gateway can be built at
  // the address of a destroyed one (tests do), so the address is not enough.
  const uint64_t serial_ = next_serial_.fetch_add(1, std::memory_order_relaxed);
  static inline std::atomic<uint64_t> next_serial_{1};
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace sluice::gateway
