#pragma once
/// @file
/// @brief Stage "authenticate": who is calling. The virtual key verifies,
/// a pipeline key may act for the agents it names, and the agent must still
/// be configured. Runs before anything else looks at the request, so
/// strangers learn nothing about models or limits.

#include <optional>
#include <string>
#include <string_view>

#include "gateway/compiled_config.h"
#include "gateway/refusal.h"
#include "store/keys.h"

namespace sluice::gateway {

/// The virtual key in an Authorization value ("Bearer sk-sluice-..."), or
/// empty when there is none. The one reading of the header: the head-time
/// check and the exchange's authentication must agree.
[[nodiscard]] std::string_view presentedKey(std::string_view authorization);

/// The 401 messages for a missing and for an unknown or revoked key, the same
/// whether the head check or the exchange refuses it.
inline constexpr std::string_view kNoKeyMessage =
    "You didn't provide an API key. Provide your Sluice virtual key in the Authorization header (Bearer sk-sluice-...).";
inline constexpr std::string_view kBadKeyMessage = "Incorrect API key provided, or the key was revoked.";

/// Looks a presented virtual key up (gateway::Worker: a per-loop cache in
/// front of the key index).
class KeyVerifier {
 public:
  virtual ~KeyVerifier() = default;
  /// The key's record, or null when it does not verify (unknown, revoked).
  [[nodiscard]] virtual const store::KeyRecord* verifyKey(std::string_view presented) = 0;
};

/// The request headers authentication reads.
struct Credentials {
  std::string_view authorization;
  std::string_view agent;  ///< X-Sluice-Agent (pipeline keys)
  std::string_view run;    ///< X-Sluice-Run
};

/// Who is calling; on a refusal, as much as was learnt (for the usage record).
struct Identity {
  std::string key_id;
  std::string agent;  ///< at most 64 bytes of a name the caller sent
  std::string run_id;
  const AgentRuntime* runtime = nullptr;
};

/// Fills `who`, or refuses: 401 invalid_api_key, 403 for a pipeline key
/// naming an agent it may not act for.
[[nodiscard]] std::optional<Refusal> authenticate(const Credentials& credentials, KeyVerifier& keys,
                                                  const CompiledConfig& config, Identity& who);

}  // namespace sluice::gateway
