#pragma once
/// @file
/// @brief Per-event-loop state: cached views of config and keys, upstream
/// clients (connection pools) per provider, request ids, jitter randomness.
/// Used only on its loop's thread.

#include <map>
#include <unordered_map>
#include <memory>
#include <string>
#include <vector>

#include "core/backoff.h"
#include "gateway/gateway.h"
#include "gateway/wire.h"
#include "net/http.h"

namespace sluice::gateway {

class Worker {
 public:
  Worker(Gateway& gateway, net::Dispatcher& loop);

  /// Entry point for one request (see exchange.cpp).
  void handle(net::HttpRequest&& request, std::shared_ptr<net::ServerStream> stream);

  /// The client of `provider` on this loop, (re)created when its settings changed.
  net::UpstreamClient& client(std::string_view name, const ProviderRuntime& provider);

  /// The key record for a presented virtual key, or nullptr. Verifying costs
  /// a SHA-256; keys that verified are remembered per loop until the key set
  /// changes, so a steady client pays it once.
  const store::KeyRecord* verifyKey(std::string_view presented);

  /// Destroys the upstream pools (calls still running complete as cancelled).
  /// Must run on this worker's loop, before the loop stops.
  void releaseClients();

  /// Pools replaced by a reload that are still alive (each until its last
  /// call ends; see handle()). For tests and diagnostics.
  [[nodiscard]] size_t retiredClients() const { return retired_.size(); }

  /// Presented keys compare in constant time (CRYPTO_memcmp): how long a
  /// lookup takes must not tell how much of a guess matched a cached key.
  struct ConstantTimeEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const;
  };
  /// Keys that verified, by the key presented (bounded; cleared when keys change).
  using VerifiedKeyCache = std::unordered_map<std::string, const store::KeyRecord*, core::StringHash, ConstantTimeEqual>;

  Gateway& gateway;
  net::Dispatcher& loop;
  LocalView<Snapshot> snapshot;
  LocalView<KeyMap> keys;
  RequestIdGenerator ids;
  core::SplitMix64 rng;

 private:
  struct ClientEntry {
    std::string identity;  // kind + base_url + key fingerprint
    std::unique_ptr<net::UpstreamClient> client;
  };
  /// A pool whose provider changed goes to retired_: its idle connections
  /// close at once, and it is destroyed once no call of its own runs.
  void retire(std::unique_ptr<net::UpstreamClient> client);
  /// After a reload: retires the pools of providers the snapshot changed or
  /// removed, and destroys retired pools whose calls all ended. Called from
  /// handle(), a fresh stack frame, never from inside a client's callback.
  void reconcileClients(const std::shared_ptr<const Snapshot>& snap);

  static constexpr size_t kMaxCachedKeys = 4096;
  std::map<std::string, ClientEntry, std::less<>> clients_;
  const KeyMap* cache_map_ = nullptr;
  VerifiedKeyCache verified_;
  // Replaced clients stay alive while calls started on them still run.
  std::vector<std::unique_ptr<net::UpstreamClient>> retired_;
  std::shared_ptr<const Snapshot> reconciled_;  // the snapshot clients_ was last checked against
};

}  // namespace sluice::gateway
