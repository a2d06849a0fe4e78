#include "gateway/worker.h"

#include "mock/mock_client.h"

namespace sluice::gateway {

Worker::Worker(Gateway& gw, net::Dispatcher& l)
    : gateway(gw),
      loop(l),
      snapshot(gw.snapshot()),
      keys(gw.keys()),
      rng(static_cast<uint64_t>(l.clock().monotonicNow().time_since_epoch().count()) ^ reinterpret_cast<uintptr_t>(this)) {}

net::UpstreamClient& Worker::client(std::string_view name, const ProviderRuntime& provider) {
  const config::ProviderConfig& pc = *provider.config;
  // The identity decides when a reload must replace the pool. The key itself
  // is part of it (a rotated key needs new requests), kept only in memory.
  std::string identity = (pc.kind == config::ProviderKind::kMock ? "mock|" : "http|") + pc.base_url + "|" +
                         std::to_string(pc.max_connections) + "|" + (pc.verify_tls ? "1" : "0") + "|" + provider.api_key;
  auto it = clients_.find(name);
  if (it != clients_.end() && it->second.identity == identity) return *it->second.client;
  std::unique_ptr<net::UpstreamClient> made;
  if (pc.kind == config::ProviderKind::kMock) {
    made = mock::makeMockUpstreamClient(loop, gateway.mockState());
  } else {
    net::UpstreamOptions opts;
    opts.base_url = pc.base_url;
    opts.api_key = provider.api_key;
    opts.max_connections = static_cast<size_t>(pc.max_connections);
    opts.verify_tls = pc.verify_tls;
    made = net::makeHttpUpstreamClient(loop, std::move(opts));
  }
  if (it != clients_.end()) {
    retired_.push_back(std::move(it->second.client));
    it->second = ClientEntry{std::move(identity), std::move(made)};
    return *it->second.client;
  }
  auto [pos, _] = clients_.emplace(std::string(name), ClientEntry{std::move(identity), std::move(made)});
  return *pos->second.client;
}

void Worker::releaseClients() {
  clients_.clear();
  retired_.clear();
}

}  // namespace sluice::gateway
