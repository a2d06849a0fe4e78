// `sluice serve`: wiring of config, stores, gateway and HTTP server, plus the
// process's signal handling: SIGHUP reloads the config file (an invalid file
// is refused and the running config stays), SIGUSR1 reopens the usage log,
// SIGINT/SIGTERM drain and stop.
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <set>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/ledger_retention.h"
#include "cli/memory_release.h"
#include "config/loader.h"
#include "core/listen_address.h"
#include "gateway/gateway.h"
#include "mock/mock_client.h"
#include "net/http.h"
#include "store/counters.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "store/sqlite_db.h"
#include "store/usage.h"
#include "tokenizer/registry.h"

namespace sluice::cli {

int serveCommand(const std::string& config_path) {
  // Logs go to stderr; stdout carries only the "listening on" line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  auto loaded = loadOrReport(config_path);
  if (!loaded) return 1;
  auto cfg = std::make_shared<const config::Config>(std::move(*loaded));

  // Block the signals we handle in every thread (threads inherit the mask),
  // then wait for them synchronously on this thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto listen = core::parseListenAddress(cfg->server.listen);
  if (!listen) {
    fmt::print(stderr, "error: server.listen '{}' is not HOST:PORT\n", cfg->server.listen);
    return 1;
  }
  auto keys = store::openKeyStore(cfg->storage.state);
  if (!keys) {
    fmt::print(stderr, "error: {}\n", keys.error().message);
    return 1;
  }
  // Usage records go to the ledger (storage.ledger, SQLite) and, when
  // server.usage_log is set, to a JSON-lines mirror: a fan-out when both.
  std::vector<std::shared_ptr<store::UsageSink>> sinks;
  std::optional<std::string> ledger_path;
  auto report = [](bool failing, const std::string& message) {
    if (failing) spdlog::error("{}", message);
    else spdlog::warn("{}", message);
  };
  if (!cfg->server.usage_log.empty()) {
    store::JsonlSinkOptions opts;
    opts.report = report;
    auto sink = store::openJsonlSink(cfg->server.usage_log, std::move(opts));
    if (!sink) {
      fmt::print(stderr, "error: {}\n", sink.error().message);
      return 1;
    }
    sinks.push_back(std::move(*sink));
  }
  if (auto path = store::sqlitePathOf(cfg->storage.ledger)) {
    store::LedgerSinkOptions opts;
    opts.report = report;
    auto sink = store::openLedgerSink(*path, std::move(opts));
    if (!sink) {
      fmt::print(stderr, "error: {}\n", sink.error().message);
      return 1;
    }
    sinks.push_back(std::move(*sink));
    ledger_path = *path;
  } else {
    spdlog::error(
        "storage.ledger '{}' is not supported yet (only sqlite:PATH): no ledger is kept, and a crash may "
        "forget up to 5 s of budget spend",
        cfg->storage.ledger);
  }
  std::shared_ptr<store::UsageSink> usage;
  std::shared_ptr<store::DiscardUsageSink> discarded;  // set when no record is kept
  if (sinks.size() > 1) {
    usage = std::make_shared<store::TeeUsageSink>(std::move(sinks));
  } else if (sinks.size() == 1) {
    usage = std::move(sinks.front());
  } else {
    // Nowhere to keep them: drop the records (the gateway's default sink
    // keeps them in memory, which is for tests and would grow without bound).
    spdlog::warn("neither a ledger nor server.usage_log is kept: usage records are dropped");
    discarded = std::make_shared<store::DiscardUsageSink>();
    usage = discarded;
  }
  for (const auto& [name, p] : cfg->providers) {
    if (!p.api_key_env.empty() && !std::getenv(p.api_key_env.c_str())) {
      spdlog::warn("provider '{}': environment variable {} is not set; calls to it will be unauthenticated", name,
                   p.api_key_env);
    }
  }

  auto counters = store::openCounterStore(cfg->storage.state);
  if (!counters) {
    fmt::print(stderr, "error: {}\n", counters.error().message);
    return 1;
  }

  // Time read once per event-loop callback (see core::CachedClock): the loops
  // open a TimeScope around each callback.
  static const core::CachedClock clock(core::SystemClock::instance());
  gateway::GatewayDeps deps;
  deps.clock = &clock;
  deps.config = cfg;
  deps.keys = std::move(*keys);
  deps.usage = usage;
  deps.counters = std::move(*counters);
  if (ledger_path) {
    deps.spend_floor = [path = *ledger_path](const core::Calendar& calendar, core::WallTime now,
                                             core::Nanos run_ttl) -> core::Result<std::vector<core::SavedCounter>> {
      auto db = store::SqliteDb::open(path);
      if (!db) return std::unexpected(db.error());
      auto spent = store::ledgerSpend(**db, calendar, now, run_ttl);
      if (!spent) {
        return core::fail(core::ErrorCode::kInternal,
                          "reading what the ledger '" + path + "' records as spent failed: " + spent.error().message);
      }
      return spent;
    };
  }
  deps.mock_provider = std::make_shared<mock::MockProvider>();  // serves `kind: mock`
  auto gw = gateway::Gateway::create(std::move(deps));
  if (!gw) {
    fmt::print(stderr, "error: {}\n", gw.error().message);
    return 1;
  }

  // The tokenizers of the configured models (exact counts where money
  // depends on them) load in the background (a fraction of a second each,
  // BENCHMARKS.md), so the first call that needs one does not hold its event
  // loop; a call that needs one sooner waits for that load
  // (tokenizer::sharedEncoding).
  std::set<std::string> encodings;
  for (const auto& [name, m] : cfg->models) {
    if (!m.encoding.empty()) encodings.insert(m.encoding);
  }
  std::jthread tokenizer_warmup([encodings = std::move(encodings)] {
    for (const std::string& e : encodings) {
      if (auto loaded = tokenizer::sharedEncoding(e); !loaded) {
        spdlog::warn("tokenizer {}: {}; calls to its models are billed by the bound where Sluice counts", e,
                     loaded.error());
      }
    }
  });

  net::ServerOptions opts;
  opts.host = listen->host;
  opts.port = listen->port;
  opts.threads = cfg->server.threads > 0 ? cfg->server.threads
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  opts.max_body_bytes = static_cast<size_t>(cfg->server.max_body_bytes);
  opts.header_timeout = std::chrono::milliseconds(cfg->server.header_timeout_ms);
  opts.idle_timeout = std::chrono::milliseconds(cfg->server.idle_timeout_ms);
  opts.max_connections = static_cast<size_t>(cfg->server.max_connections);
  opts.max_buffered_body_bytes = static_cast<size_t>(cfg->server.max_buffered_body_bytes);
  auto server = net::makeHttpServer(opts, (*gw)->httpHandler(), clock);
  if (!server->start()) {
    fmt::print(stderr, "error: cannot listen on {}\n", cfg->server.listen);
    return 1;
  }
  fmt::print("sluice listening on http://{}:{} (config {}, version {}, {} loop{})\n", listen->host, server->port(),
             config_path, cfg->hash.substr(0, 12), opts.threads, opts.threads == 1 ? "" : "s");
  std::fflush(stdout);

  // Upkeep (key refresh, expired reservations, counter saves) about once a
  // second, whether or not signals arrive meanwhile: a steady stream of them
  // (reloads, log rotations) must not starve it.
  constexpr core::Nanos kMaintainEvery = std::chrono::seconds(1);
  core::MonoTime next_maintain = clock.monotonicNow() + kMaintainEvery;
  // After a burst of request bodies, give the freed memory back (see
  // memory_release.h): checked with the upkeep, about once a second.
  BurstReleasePolicy release_policy;
  // storage.ledger_retention_days: old rows go in small batches, from here.
  const auto retention = LedgerRetention::create(*cfg);
  while (true) {
    const auto wait = std::clamp<int64_t>((next_maintain - clock.monotonicNow()).count(), 1'000'000, 1'000'000'000);
    const timespec tick{wait / 1'000'000'000, wait % 1'000'000'000};
    siginfo_t info{};
    const int sig = sigtimedwait(&signals, &info, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (const core::MonoTime now = clock.monotonicNow(); now >= next_maintain) {
      (*gw)->maintain();
      next_maintain = now + kMaintainEvery;
      if (retention) retention->tick(clock.wallNow(), now);
      if (const auto bodies = server->takeBufferedBodies(); release_policy.tick(bodies.now, bodies.peak)) {
        releaseFreeMemory();
        spdlog::debug("released free memory ({}) after a burst of request bodies", memoryReleaser());
      }
    }
    if (sig == SIGHUP) {
      auto next = config::loadConfigFile(config_path);
      if (!next) {
        spdlog::error("reload of {} refused; the running config stays:\n{}", config_path,
                      config::formatDiagnostics(next.error()));
        continue;
      }
      auto applied = (*gw)->reload(std::make_shared<const config::Config>(std::move(*next)));
      if (!applied) spdlog::error("reload of {} refused: {}", config_path, applied.error().message);
      else spdlog::info("reloaded {}", config_path);
      continue;
    }
    if (sig == SIGUSR1) {  // as nginx: logrotate renamed the log, write to a new file by its name
      if (cfg->server.usage_log.empty()) continue;
      if (auto r = usage->reopen(); !r) spdlog::error("{}", r.error().message);
      else spdlog::info("reopened the usage log {}", cfg->server.usage_log);
      continue;
    }
  }
  // Shutdown: refuse new requests, let in-flight ones finish (up to 10 s),
  // cancel and settle what is left, then stop the loops.
  spdlog::info("shutting down: draining {} in-flight request(s)", (*gw)->stats().in_flight.load());
  (*gw)->setDraining();
  for (int i = 0; i < 1000 && (*gw)->stats().in_flight.load() > 0; ++i) {
    const timespec pause{0, 10'000'000};
    nanosleep(&pause, nullptr);
  }
  (*gw)->releaseUpstreams(server->loops());
  server->stop(std::chrono::seconds(2));
  server->wait();
  if (auto saved = (*gw)->saveCounters(); !saved)
    spdlog::error("saving budget counters failed: {}", saved.error().message);
  if (usage) usage->flush();
  if (discarded)
    spdlog::info("{} usage record(s) were not kept (no ledger, no server.usage_log)", discarded->dropped());
  spdlog::info("stopped");
  return 0;
}

}  // namespace sluice::cli
