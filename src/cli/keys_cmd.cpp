#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/clock.h"
#include "store/keys.h"

namespace sluice::cli {
namespace {

int64_t nowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(core::SystemClock::instance().wallNow().time_since_epoch())
      .count();
}

std::unique_ptr<store::KeyStore> openStore(const config::Config& cfg) {
  auto store = store::openKeyStore(cfg.storage.state);
  if (!store) {
    fmt::print(stderr, "error: {}\n", store.error().message);
    return nullptr;
  }
  return std::move(*store);
}

}  // namespace

int keysCreateCommand(const std::string& config_path, const std::string& agent, bool pipeline,
                      const std::vector<std::string>& acts_for, bool json) {
  auto cfg = loadOrReport(config_path);
  if (!cfg) return 1;
  if (!pipeline && !acts_for.empty()) {
    fmt::print(stderr, "error: --acts-for needs --pipeline\n");
    return 2;
  }
  if (pipeline && acts_for.empty()) {
    fmt::print(stderr, "error: a pipeline key needs --acts-for with at least one agent\n");
    return 2;
  }
  if (!pipeline && agent.empty()) {
    fmt::print(stderr, "error: --agent is required\n");
    return 2;
  }
  std::vector<std::string> named = acts_for;
  if (!agent.empty()) named.push_back(agent);
  for (const auto& a : named) {
    if (!cfg->agents.contains(a)) {
      fmt::print(stderr, "error: agent '{}' is not defined in {}\n", a, config_path);
      return 1;
    }
  }
  if (pipeline && !agent.empty() && std::find(acts_for.begin(), acts_for.end(), agent) == acts_for.end()) {
    fmt::print(stderr, "error: the default agent '{}' must be one of --acts-for\n", agent);
    return 2;
  }
  auto store = openStore(*cfg);
  if (!store) return 1;
  auto created = store::generateKey(agent, pipeline, acts_for, nowUnix());
  if (auto r = store->insert(created.record); !r) {
    fmt::print(stderr, "error: {}\n", r.error().message);
    return 1;
  }
  if (json) {
    nlohmann::json j = {{"id", created.record.id},
                        {"agent", agent},
                        {"pipeline", pipeline},
                        {"acts_for", acts_for},
                        {"key", created.secret_key}};
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("{}\n", created.secret_key);
    fmt::print(stderr, "key id {} for agent '{}'{}; the key above is shown only once\n", created.record.id,
               agent.empty() ? "-" : agent, pipeline ? " (pipeline)" : "");
  }
  return 0;
}

int keysListCommand(const std::string& config_path, bool json) {
  auto cfg = loadOrReport(config_path);
  if (!cfg) return 1;
  auto store = openStore(*cfg);
  if (!store) return 1;
  auto keys = store->list();
  if (!keys) {
    fmt::print(stderr, "error: {}\n", keys.error().message);
    return 1;
  }
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& k : *keys) {
      arr.push_back({{"id", k.id},
                     {"agent", k.agent},
                     {"pipeline", k.pipeline},
                     {"acts_for", k.acts_for},
                     {"created_unix", k.created_unix},
                     {"revoked_unix", k.revoked_unix ? nlohmann::json(*k.revoked_unix) : nlohmann::json(nullptr)}});
    }
    fmt::print("{}\n", arr.dump());
    return 0;
  }
  fmt::print("{:<14} {:<20} {:<8} {:<10} {}\n", "ID", "AGENT", "KIND", "STATE", "ACTS FOR");
  for (const auto& k : *keys) {
    std::string acts;
    for (const auto& a : k.acts_for) acts += (acts.empty() ? "" : ",") + a;
    fmt::print("{:<14} {:<20} {:<8} {:<10} {}\n", k.id, k.agent.empty() ? "-" : k.agent,
               k.pipeline ? "pipeline" : "agent", k.revoked_unix ? "revoked" : "active", acts);
  }
  return 0;
}

int keysRevokeCommand(const std::string& config_path, const std::string& id) {
  auto cfg = loadOrReport(config_path);
  if (!cfg) return 1;
  auto store = openStore(*cfg);
  if (!store) return 1;
  if (auto r = store->revoke(id, nowUnix()); !r) {
    fmt::print(stderr, "error: {}\n", r.error().message);
    return 1;
  }
  fmt::print("revoked {}\n", id);
  return 0;
}

}  // namespace sluice::cli
