#include "gateway/worker.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "core/money.h"
#include "gateway/exchange.h"
#include "proto/errors.h"

namespace sluice::gateway {

void Worker::handle(net::HttpRequest&& request, std::shared_ptr<net::ServerStream> stream) {
  const std::string_view path = stripQuery(request.target);
  if (path == "/healthz") {
    return stream->respond(200, {{"content-type", "application/json"}}, R"({"status":"ok"})");
  }
  if (path == "/readyz") {
    if (gateway_.draining())
      return stream->respond(503, {{"content-type", "application/json"}}, R"({"status":"draining"})");
    // Records cannot be written (disk full...): they queue in memory, bounded;
    // an orchestrator should send traffic to a replica that can keep its ledger.
    if (gateway_.usage().problem()) {
      return stream->respond(503, {{"content-type", "application/json"}}, R"({"status":"usage_log_failing"})");
    }
    return stream->respond(200, {{"content-type", "application/json"}}, R"({"status":"ready"})");
  }
  if (path == "/metrics") return serveMetrics(request, stream);
  if (gateway_.draining()) {
    // Shutting down: a retryable answer, so SDKs try again (another replica).
    // Traced like any refusal: a request id and a usage record.
    std::string id = recordRefusal(&request, 503, core::wireError(core::ErrorCode::kUpstreamUnavailable).code,
                                   store::Outcome::kRejectedOverload);
    return stream->respond(
        503, {{"content-type", "application/json"}, {"retry-after", "1"}, {"x-request-id", std::move(id)}},
        proto::errorBody(core::ErrorCode::kUpstreamUnavailable, "The gateway is shutting down; retry shortly."));
  }
  gateway_.stats().in_flight.fetch_add(1, std::memory_order_relaxed);
  // One pointer compare per request; the work runs after a reload only.
  if (const auto& snap = config_.get(); snap != reconciled_ || !retired_.empty()) reconcileClients(snap);
  serveExchange(*this, std::move(request), std::move(stream));
}

Worker::Worker(Gateway& gateway, net::Dispatcher& loop)
    : gateway_(gateway),
      loop_(loop),
      config_(gateway.config()),
      keys_(gateway.keys()),
      metrics_(gateway.metrics().addShard()),
      rng_(static_cast<uint64_t>(loop.clock().monotonicNow().time_since_epoch().count()) ^
           reinterpret_cast<uintptr_t>(this)) {}

net::UpstreamClient& Worker::client(std::string_view name, const ProviderRuntime& provider) {
  const config::ProviderConfig& pc = *provider.config;
  auto it = clients_.find(name);
  if (it != clients_.end() && it->second.identity == provider.pool_identity) return *it->second.client;
  std::string identity = provider.pool_identity;
  std::unique_ptr<net::UpstreamClient> made;
  if (pc.kind == config::ProviderKind::kMock) {
    // Gateway::create and reload refuse a kind: mock provider without one.
    made = gateway_.mockProvider()->makeClient(loop_);
  } else {
    net::UpstreamOptions opts;
    opts.base_url = pc.base_url;
    opts.api_key = provider.api_key;
    opts.max_connections = static_cast<size_t>(pc.max_connections);
    opts.verify_tls = pc.verify_tls;
    made = net::makeHttpUpstreamClient(loop_, std::move(opts));
  }
  if (it != clients_.end()) {
    // A request still on an older compiled config, or the first after a reload.
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
  const auto& map = keys_.get();
  if (map.get() != cache_map_) {
    // Keys changed (created, revoked): start over, so a revoked key is never
    // served from the cache.
    verified_.clear();
    cache_map_ = map.get();
    last_record_ = nullptr;
  }
  if (last_record_ != nullptr && ConstantTimeEqual{}(presented, last_key_)) return last_record_;
  const store::KeyRecord* record = nullptr;
  if (auto it = verified_.find(presented); it != verified_.end()) {
    record = it->second;
  } else {
    record = map->verify(presented);
    if (!record) return nullptr;
    // Only keys that verified are cached, so a flood of wrong keys cannot
    // grow it; the bound covers a flood of valid ones.
    if (verified_.size() >= kMaxCachedKeys) verified_.clear();
    verified_.emplace(std::string(presented), record);
  }
  last_key_.assign(presented);  // keys have one length: no allocation after the first
  last_record_ = record;
  return record;
}

void Worker::serveMetrics(const net::HttpRequest& request, const std::shared_ptr<net::ServerStream>& stream) {
  const auto& snap = config_.get();
  const auto refuse = [&](core::ErrorCode code, std::string_view message) {
    stream->respond(core::wireError(code).http_status, {{"content-type", "application/json"}},
                    proto::errorBody(code, message));
  };
  if (request.method != "GET") return refuse(core::ErrorCode::kMethodNotAllowed, "Use GET for /metrics.");
  if (!snap->config->server.metrics_public) {
    // No admin key configured: the admin routes are off, never open.
    if (!snap->admin_key_digest) return refuse(core::ErrorCode::kNotFound, "Unknown request URL: GET /metrics.");
    if (!snap->isAdminKey(presentedKey(request.header("authorization")))) {
      return refuse(core::ErrorCode::kInvalidApiKey, "The metrics need the admin key (Authorization: Bearer ...).");
    }
  }
  stream->respond(200, {{"content-type", "text/plain; version=0.0.4; charset=utf-8"}, {"cache-control", "no-store"}},
                  gateway_.renderMetrics());
}

net::HeadAnswer Worker::checkHead(const net::HttpRequest& head) {
  const std::string_view target = head.target;
  // The probes (with or without a query) need no key.
  // /metrics checks the admin key itself (Worker::serveMetrics).
  for (const std::string_view probe :
       {std::string_view("/healthz"), std::string_view("/readyz"), std::string_view("/metrics")}) {
    if (target.starts_with(probe) && (target.size() == probe.size() || target[probe.size()] == '?')) return {};
  }
  static constexpr core::WireError kWire = core::wireError(core::ErrorCode::kInvalidApiKey);
  const std::string_view key = presentedKey(head.header("authorization"));
  if (key.empty()) return {kWire.http_status, kNoKeyMessage, kWire.type, kWire.code};
  // Never echo the presented key: it may be a real provider key sent by mistake.
  if (verifyKey(key) == nullptr) return {kWire.http_status, kBadKeyMessage, kWire.type, kWire.code};
  return {};
}

std::string Worker::recordRefusal(const net::HttpRequest* head, int status, std::string_view error_code,
                                  store::Outcome outcome) {
  store::UsageRecord rec;
  rec.request_id = ids_.next();
  rec.started_unix_ms = rec.finished_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(loop_.clock().wallNow().time_since_epoch()).count();
  const auto& snap = config_.get();
  rec.config_version = snap->config_version;
  rec.http_status = status;
  rec.outcome = outcome;
  rec.error_code = std::string(error_code);
  if (head != nullptr) {
    rec.endpoint = std::string(endpointName(head->target));
    // Who sent it, when the head names a valid key (no agent otherwise; a
    // 401 was about the key: it is not looked up twice).
    if (outcome != store::Outcome::kRejectedAuth) {
      Identity who;
      const bool known = !authenticate({head->header("authorization"), head->header("x-sluice-agent"), {}}, *this,
                                       *snap, who);
      rec.key_id = std::move(who.key_id);
      if (known) {
        rec.agent = std::move(who.agent);
        rec.tier = who.runtime->tier;
      }
    }
  }
  metrics_.record(rec, *snap);
  std::string id = rec.request_id;
  gateway_.usage().submit(std::move(rec));
  return id;
}

void Worker::traceServerAnswer(const net::ServerAnswer& answer, net::HeaderLines& fields) {
  const store::Outcome outcome = answer.status == 401   ? store::Outcome::kRejectedAuth
                                 : answer.status == 503 ? store::Outcome::kRejectedOverload
                                                        : store::Outcome::kRejectedInvalid;
  const std::string id = recordRefusal(answer.head, answer.status, answer.code.empty() ? answer.type : answer.code,
                                       outcome);
  fields.add("x-request-id", id);
  fields.add("x-sluice-config-version", config_.get()->config_version);
  fields.add("x-sluice-cost-usd", core::formatUsd(0));
}

void Worker::retire(std::unique_ptr<net::UpstreamClient> client) {
  client->retire();
  // Not destroyed here even when idle: client() runs inside callbacks of
  // other calls, possibly of this very client.
  retired_.push_back(std::move(client));
}

void Worker::reconcileClients(const std::shared_ptr<const CompiledConfig>& snap) {
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
