#pragma once
// The request pipeline without sockets: a Gateway on a config text, one
// virtual key per named agent, the in-process mock provider, a manual clock
// driving a fake loop (every timeout, backoff and first-token deadline moves
// only when the test advances it) and a recording usage sink.

#include <gtest/gtest.h>

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "config/loader.h"
#include "fakes/fake_dispatcher.h"
#include "fakes/fake_server_stream.h"
#include "gateway/gateway.h"
#include "mock/mock_client.h"
#include "mock/state.h"
#include "store/keys.h"

namespace sluice::gateway::testing {

using sluice::testing::FakeDispatcher;
using sluice::testing::FakeServerStream;

/// A gateway on `config` with the given keys and usage sink, its `kind: mock`
/// providers served by the built-in mock on `mock` (a fresh one when null),
/// as `sluice serve` wires it (nullptr when the config or the gateway fails;
/// the test fails with the reason).
inline std::unique_ptr<Gateway> makeGateway(std::string_view config, const core::Clock& clock,
                                            decltype(GatewayDeps::keys) keys, std::shared_ptr<store::UsageSink> sink,
                                            size_t max_reservations = GatewayDeps{}.max_reservations,
                                            std::shared_ptr<mock::MockState> mock = nullptr,
                                            decltype(GatewayDeps::admission) admission = nullptr,
                                            decltype(GatewayDeps::env) env = nullptr) {
  auto cfg = config::loadConfigString(config, "test.yaml");
  EXPECT_TRUE(cfg) << cfg.error().front().str();
  if (!cfg) return nullptr;
  GatewayDeps deps;
  deps.clock = &clock;
  deps.config = std::make_shared<const config::Config>(std::move(*cfg));
  deps.keys = std::move(keys);
  deps.usage = std::move(sink);
  deps.max_reservations = max_reservations;
  deps.admission = std::move(admission);
  if (env) deps.env = std::move(env);
  deps.mock_provider = mock ? std::make_shared<mock::MockProvider>(std::move(mock))
                            : std::make_shared<mock::MockProvider>();
  auto gw = Gateway::create(std::move(deps));
  EXPECT_TRUE(gw) << gw.error().message;
  return gw ? std::move(*gw) : nullptr;
}

class Pipeline {
 public:
  /// False (with a test failure) when the gateway could not be made.
  [[nodiscard]] bool start(std::string_view config, std::initializer_list<const char*> agents,
                           size_t max_reservations = GatewayDeps{}.max_reservations) {
    auto keys = store::openKeyStore("memory");
    EXPECT_TRUE(keys);
    if (!keys) return false;
    for (const char* agent : agents) {
      auto k = store::generateKey(agent, false, {}, 0);
      EXPECT_TRUE((*keys)->insert(k.record));
      secrets[agent] = k.secret_key;
    }
    sink = std::make_shared<store::MemoryUsageSink>();
    gw = makeGateway(config, clock, std::move(*keys), sink, max_reservations, mock, admission, env);
    return gw != nullptr;
  }

  /// Sends a request as `agent` and runs what is ready on the loop.
  std::shared_ptr<FakeServerStream> send(std::string_view agent, std::string body,
                                         std::string path = "/v1/chat/completions") {
    auto stream = std::make_shared<FakeServerStream>();
    net::HttpRequest req{"POST",
                         std::move(path),
                         {{"authorization", "Bearer " + secrets[std::string(agent)]}},
                         std::move(body)};
    gw->handler()(std::move(req), stream, loop);
    loop.runReady();
    return stream;
  }

  /// The newest usage record (deferred hand-offs run first).
  store::UsageRecord lastRecord() {
    loop.runReady();
    auto records = sink->records();
    EXPECT_FALSE(records.empty());
    return records.empty() ? store::UsageRecord{} : records.back();
  }

  void setMock(const std::string& json) { ASSERT_TRUE(mock->configure(json)); }

  core::ManualClock clock;
  FakeDispatcher loop{clock};
  std::map<std::string, std::string> secrets;
  std::shared_ptr<store::MemoryUsageSink> sink;
  std::unique_ptr<Gateway> gw;
  /// Makes the admission control (default: the in-process one); see
  /// deferred_admission.h for one that answers a loop turn later.
  decltype(GatewayDeps::admission) admission;
  /// Resolves environment variables (default: getenv).
  decltype(GatewayDeps::env) env;
  /// The built-in mock provider's knobs and bill.
  std::shared_ptr<mock::MockState> mock = std::make_shared<mock::MockState>();
};

}  // namespace sluice::gateway::testing
