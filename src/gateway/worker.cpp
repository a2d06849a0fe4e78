#include "gateway/worker.h"

#include <openssl/crypto.h>

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
  auto it = clients_.find(name);
  if (it != clients_.end() && it->second.identity == provider.pool_identity) return *it->second.client;
  std::string identity = provider.pool_identity;
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
    // A request still on an older snapshot, or the first after a reload.
    retire(std::move(it->second.client));
    it->second = ClientEntry{std::move(identity), std::move(made)};
    return *it->second.client;
  }
  auto [pos, _] = clients_.emplace(std::string(name), ClientEntry{std::move(identity), std::move(made)});
  return *pos->second.client;
}

bool Worker::ConstantTimeEqual::operator()(std::string_view a, std::string_view b) const {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

const store::KeyRecord* Worker::verifyKey(std::string_view presented) {
  const auto& map = keys.get();
  if (map.get() != cache_map_) {
    // Keys changed (created, revoked): start over, so a revoked key is never
    // served from the cache.
    verified_.clear();
    cache_map_ = map.get();
  }
  if (auto it = verified_.find(presented); it != verified_.end()) return it->second;
  const store::KeyRecord* record = map->verify(presented);
  if (record) {
    // Only keys that verified are cached, so a flood of wrong keys cannot
    // grow it; the bound covers a flood of valid ones.
    if (verified_.size() >= kMaxCachedKeys) verified_.clear();
    verified_.emplace(std::string(presented), record);
  }
  return record;
}

void Worker::retire(std::unique_ptr<net::UpstreamClient> client) {
  client->retire();
  // Not destroyed here even when idle: client() runs inside callbacks of
  // other calls, possibly of this very client.
  retired_.push_back(std::move(client));
}

void Worker::reconcileClients(const std::shared_ptr<const Snapshot>& snap) {
  if (snap != reconciled_) {
    reconciled_ = snap;
    for (auto it = clients_.begin(); it != clients_.end();) {
      const auto p = snap->providers.find(it->first);
      if (p != snap->providers.end() && p->second.pool_identity == it->second.identity) {
        ++it;
        continue;
      }
      retire(std::move(it->second.client));
      it = clients_.erase(it);
    }
  }
  std::erase_if(retired_, [](const auto& c) { return !c->busy(); });
}

void Worker::releaseClients() {
  clients_.clear();
  retired_.clear();
}

}  // namespace sluice::gateway
