#include "gateway/gateway.h"

#include <cstdlib>
#include <future>

#include "gateway/worker.h"

namespace sluice::gateway {
namespace {

std::optional<std::string> getEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

core::BreakerOptions breakerOptions(const config::Config& cfg) {
  const auto& b = cfg.resilience.breaker;
  return core::BreakerOptions{.failures = b.failures,
                              .open_for = std::chrono::milliseconds(b.open_ms),
                              .half_open_probes = b.half_open_probes};
}

// A provider of kind: mock is served by the in-process provider the app
// wires in (GatewayDeps::mock_provider); without one, such a config is refused.
core::Result<void> checkMockProvider(const config::Config& cfg, const net::InProcessProvider* mock) {
  if (mock != nullptr) return {};
  for (const auto& [name, p] : cfg.providers) {
    if (p.kind == config::ProviderKind::kMock) {
      return core::fail(core::ErrorCode::kConfig,
                        "provider '" + name + "' is kind: mock, but this gateway has no built-in mock provider");
    }
  }
  return {};
}

}  // namespace

core::Result<std::unique_ptr<Gateway>> Gateway::create(GatewayDeps deps) {
  std::unique_ptr<Gateway> gw(new Gateway());
  gw->clock_ = deps.clock;
  gw->env_ = deps.env ? std::move(deps.env) : getEnv;
  const config::Config& cfg = *deps.config;

  auto calendar = core::Calendar::create(cfg.budgets.time_zone);
  if (!calendar) return std::unexpected(calendar.error());
  core::BudgetEngine::Options bopts;
  bopts.reservation_ttl = std::chrono::seconds(cfg.budgets.reservation_ttl_s);
  bopts.max_reservations = deps.max_reservations;
  gw->budgets_ = std::make_unique<core::BudgetEngine>(*gw->clock_, std::move(*calendar), bopts);
  gw->breakers_ = std::make_unique<core::BreakerRegistry>(*gw->clock_, breakerOptions(cfg));
  gw->admission_ = deps.admission ? deps.admission(*gw->budgets_, gw->rate_)
                                  : std::make_unique<InProcessAdmissionControl>(*gw->budgets_, gw->rate_);
  gw->keys_ = std::make_unique<KeyIndex>(std::move(deps.keys));
  if (auto r = gw->keys_->refresh(); !r) return std::unexpected(r.error());
  gw->usage_ = deps.usage ? std::move(deps.usage) : std::make_shared<store::MemoryUsageSink>();
  gw->mock_provider_ = std::move(deps.mock_provider);
  if (auto r = checkMockProvider(cfg, gw->mock_provider_.get()); !r) return std::unexpected(r.error());

  auto snap = compileConfig(deps.config, *gw->budgets_, gw->env_);
  if (!snap) return std::unexpected(snap.error());
  gw->config_ = std::make_unique<Published<CompiledConfig>>(std::move(*snap));
  // Scopes exist now (the compiled config defined them): bring back what was spent
  // before the restart, so a day's budget is not granted twice.
  gw->counters_ = std::move(deps.counters);
  if (gw->counters_) {
    auto saved = gw->counters_->load();
    if (!saved) return std::unexpected(saved.error());
    gw->budgets_->restore(*saved);
  }
  // The counters were saved a few seconds apart: after a crash, what the
  // ledger committed since the last save is taken from the ledger.
  if (deps.spend_floor) {
    const core::Nanos run_ttl = cfg.budgets.run ? core::Nanos(std::chrono::seconds(cfg.budgets.run->ttl_s))
                                                : core::Nanos(std::chrono::hours(1));
    auto floor = deps.spend_floor(gw->budgets_->calendar(), gw->clock_->wallNow(), run_ttl);
    if (!floor) return std::unexpected(floor.error());
    gw->budgets_->restoreAtLeast(*floor);
  }
  return gw;
}

Gateway::~Gateway() = default;

Worker& Gateway::workerFor(net::Dispatcher& loop) {
  // Each loop is one thread, so a thread_local cache makes the lookup free;
  // the owner check keeps tests that create several gateways honest.
  thread_local uint64_t tl_owner = 0;
  thread_local net::Dispatcher* tl_loop = nullptr;
  thread_local Worker* tl_worker = nullptr;
  if (tl_owner == serial_ && tl_loop == &loop) return *tl_worker;
  std::lock_guard lock(workers_mu_);
  Worker* found = nullptr;
  for (auto& w : workers_) {
    if (&w->loop() == &loop) found = w.get();
  }
  if (!found) {
    workers_.push_back(std::make_unique<Worker>(*this, loop));
    found = workers_.back().get();
  }
  tl_owner = serial_;
  tl_loop = &loop;
  tl_worker = found;
  return *found;
}

class Gateway::HttpEntry final : public net::RequestHandler {
 public:
  explicit HttpEntry(Gateway& gw) : gw_(gw) {}
  net::HeadAnswer onHead(const net::HttpRequest& head, net::Dispatcher& loop) override {
    return gw_.workerFor(loop).checkHead(head);
  }
  void onRequest(net::HttpRequest&& request, std::shared_ptr<net::ServerStream> stream,
                 net::Dispatcher& loop) override {
    gw_.workerFor(loop).handle(std::move(request), std::move(stream));
  }
  void onServerAnswer(const net::ServerAnswer& answer, net::Dispatcher& loop, net::HeaderLines& fields) override {
    gw_.workerFor(loop).traceServerAnswer(answer, fields);
  }

 private:
  Gateway& gw_;
};

std::shared_ptr<net::RequestHandler> Gateway::httpHandler() { return std::make_shared<HttpEntry>(*this); }

net::Handler Gateway::handler() {
  return [this](net::HttpRequest&& request, std::shared_ptr<net::ServerStream> stream, net::Dispatcher& loop) {
    workerFor(loop).handle(std::move(request), std::move(stream));
  };
}

core::Result<void> Gateway::reload(const std::shared_ptr<const config::Config>& config) {
  std::lock_guard lock(maintain_mu_);
  if (auto r = checkMockProvider(*config, mock_provider_.get()); !r) return r;
  auto snap = compileConfig(config, *budgets_, env_);
  if (!snap) return std::unexpected(snap.error());
  config_->publish(std::move(*snap));
  return {};
}

void Gateway::releaseUpstreams(const std::vector<net::Dispatcher*>& loops) {
  for (net::Dispatcher* loop : loops) {
    std::promise<void> done;
    loop->post([&] {
      std::unique_lock lock(workers_mu_);
      Worker* w = nullptr;
      for (auto& x : workers_) {
        if (&x->loop() == loop) w = x.get();
      }
      lock.unlock();
      if (w) w->releaseClients();
      done.set_value();
    });
    done.get_future().wait();
  }
}

void Gateway::maintain() {
  std::lock_guard lock(maintain_mu_);
  (void)keys_->refresh();  // a failed read keeps the current keys
  budgets_->expireStale();
  rate_.evictIdle(clock_->monotonicNow());
  // Every 5 ticks: counters change on every request, but a save rewrites the
  // table, and the saved counters already count in-flight reservations as spent.
  if (counters_ && ++maintain_ticks_ % 5 == 0) (void)counters_->save(budgets_->savedCounters());
}

core::Result<void> Gateway::saveCounters() {
  std::lock_guard lock(maintain_mu_);
  if (!counters_) return {};
  return counters_->save(budgets_->savedCounters());
}

std::string Gateway::renderMetrics() {
  const auto snap = config_->current();
  return metrics_.render(MetricsSources{.config = snap.get(),
                                        .budgets = budgets_.get(),
                                        .breakers = breakers_.get(),
                                        .usage = usage_.get(),
                                        .in_flight = stats_.in_flight.load(std::memory_order_relaxed),
                                        .usage_clamped = stats_.usage_clamped.load(std::memory_order_relaxed)});
}

}  // namespace sluice::gateway
