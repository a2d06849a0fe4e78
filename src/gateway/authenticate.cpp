#include "gateway/authenticate.h"

#include <algorithm>

namespace sluice::gateway {

using core::ErrorCode;
using store::Outcome;

std::string_view presentedKey(std::string_view auth) {
  if (auth.size() >= 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) auth.remove_prefix(7);
  else return {};
  while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
  return auth;
}

std::optional<Refusal> authenticate(const Credentials& c, KeyVerifier& keys, const CompiledConfig& config,
                                    Identity& who) {
  const std::string_view presented = presentedKey(c.authorization);
  if (presented.empty()) return Refusal{ErrorCode::kInvalidApiKey, std::string(kNoKeyMessage), Outcome::kRejectedAuth};
  const store::KeyRecord* key = keys.verifyKey(presented);
  // Never echo the presented key: it may be a real provider key sent by mistake.
  if (!key) return Refusal{ErrorCode::kInvalidApiKey, std::string(kBadKeyMessage), Outcome::kRejectedAuth};
  who.key_id = key->id;
  std::string_view agent = key->agent;
  if (key->pipeline) {
    if (!c.agent.empty()) {
      if (std::find(key->acts_for.begin(), key->acts_for.end(), c.agent) == key->acts_for.end()) {
        who.agent = std::string(c.agent.substr(0, 64));
        return Refusal{ErrorCode::kAgentNotAllowed, "This pipeline key may not act for agent '" + who.agent + "'.",
                       Outcome::kRejectedAuth};
      }
      agent = c.agent;
    } else if (agent.empty()) {
      return Refusal{ErrorCode::kAgentNotAllowed, "A pipeline key must name its agent in the X-Sluice-Agent header.",
                     Outcome::kRejectedAuth};
    }
  }
  who.runtime = config.agent(agent);
  who.agent = std::string(agent);
  if (!who.runtime) {
    return Refusal{ErrorCode::kInvalidApiKey, "The agent of this key is no longer configured.", Outcome::kRejectedAuth};
  }
  if (!c.run.empty()) who.run_id = std::string(c.run.substr(0, 256));
  return std::nullopt;
}

}  // namespace sluice::gateway
