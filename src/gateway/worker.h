#pragma once
/// @file
/// @brief Per-event-loop state: cached views of config and keys, upstream
/// clients (connection pools) per provider, request ids, jitter randomness.
/// Used only on its loop's thread.

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/backoff.h"
#include "core/string_hash.h"
#include "gateway/authenticate.h"
#include "gateway/endpoints.h"
#include "gateway/gateway.h"
#include "gateway/wire.h"
#include "net/http.h"

namespace sluice::gateway {

class Worker final : public KeyVerifier {
 public:
  Worker(Gateway& gateway, net::Dispatcher& loop);

  /// Entry point for one request (see exchange.cpp).
  void handle(net::HttpRequest&& request, std::shared_ptr<net::ServerStream> stream);

  /// The head-time check (net::RequestHandler::onHead), before a byte of the
  /// body is buffered: a request without a key, or with one that does not
  /// verify, is answered 401 (invalid_api_key) from its head; /healthz and
  /// /readyz need no key. The rest of authentication (pipeline agents,
  /// revoked agents) stays with the exchange, which finds the key in the
  /// verified-key cache. Allocation-free but for a key's first verification.
  [[nodiscard]] net::HeadAnswer checkHead(const net::HttpRequest& head);

  /// An answer the HTTP server wrote by itself (net::RequestHandler::
  /// onServerAnswer: 400, 408, 413, 431, 503) becomes a traced request like
  /// any other: a request id in `fields` (x-request-id, with
  /// x-sluice-config-version) and a usage record (rejected_invalid, or
  /// rejected_overload for a 503), with the key and agent when the head
  /// named a valid key.
  void traceServerAnswer(const net::ServerAnswer& answer, net::HeaderLines& fields);

  /// The client of `provider` on this loop, (re)created when its settings changed.
  net::UpstreamClient& client(std::string_view name, const ProviderRuntime& provider);

  /// The key record for a presented virtual key, or nullptr. Verifying costs
  /// a SHA-256; keys that verified are remembered per loop until the key set
  /// changes, so a steady client pays it once.
  const store::KeyRecord* verifyKey(std::string_view presented) override;

  /// Destroys the upstream pools (calls still running complete as cancelled).
  /// Must run on this worker's loop, before the loop stops.
  void releaseClients();

  /// Presented keys compare in constant time (CRYPTO_memcmp): how long a
  /// lookup takes must not tell how much of a guess matched a cached key.
  struct ConstantTimeEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const;
  };
  /// Keys that verified, by the key presented (bounded; cleared when keys change).
  using VerifiedKeyCache =
      std::unordered_map<std::string, const store::KeyRecord*, core::StringHash, ConstantTimeEqual>;

  [[nodiscard]] Gateway& gateway() { return gateway_; }
  [[nodiscard]] net::Dispatcher& loop() { return loop_; }
  /// This loop's view of the published compiled config.
  [[nodiscard]] LocalView<CompiledConfig>& config() { return config_; }
  [[nodiscard]] RequestIdGenerator& ids() { return ids_; }
  /// Jitter randomness (backoff), this loop's own.
  [[nodiscard]] core::SplitMix64& rng() { return rng_; }
  /// This loop's share of the Prometheus counters.
  [[nodiscard]] MetricsShard& metrics() { return metrics_; }

 private:
  struct ClientEntry {
    std::string identity;  // kind + base_url + key fingerprint
    std::unique_ptr<net::UpstreamClient> client;
  };
  /// A pool whose provider changed goes to retired_: its idle connections
  /// close at once, and it is destroyed once no call of its own runs.
  void retire(std::unique_ptr<net::UpstreamClient> client);
  /// After a reload: retires the pools of providers the new config changed or
  /// removed, and destroys retired pools whose calls all ended. Called from
  /// handle(), a fresh stack frame, never from inside a client's callback.
  void reconcileClients(const std::shared_ptr<const CompiledConfig>& snap);
  /// Hands the usage record of a request refused before any Exchange (by the
  /// server, or while draining) to the sink; returns its request id.
  std::string recordRefusal(const net::HttpRequest* head, int status, std::string_view error_code,
                            store::Outcome outcome);
  /// GET /metrics: the exposition text, behind the admin key unless
  /// server.metrics_public; 404 when neither (no admin key configured).
  void serveMetrics(const net::HttpRequest& request, const std::shared_ptr<net::ServerStream>& stream);

  static constexpr size_t kMaxCachedKeys = 4096;
  Gateway& gateway_;
  net::Dispatcher& loop_;
  LocalView<CompiledConfig> config_;
  LocalView<KeyMap> keys_;
  RequestIdGenerator ids_;
  MetricsShard& metrics_;
  core::SplitMix64 rng_;
  std::map<std::string, ClientEntry, std::less<>> clients_;
  const KeyMap* cache_map_ = nullptr;
  VerifiedKeyCache verified_;
  // The last key that verified: a request's head check and its exchange look
  // the same key up back to back, and a compare is cheaper than a hash.
  std::string last_key_;
  const store::KeyRecord* last_record_ = nullptr;
  // Replaced clients stay alive while calls started on them still run.
  std::vector<std::unique_ptr<net::UpstreamClient>> retired_;
  std::shared_ptr<const CompiledConfig> reconciled_;  // the snapshot clients_ was last checked against
};

}  // namespace sluice::gateway
