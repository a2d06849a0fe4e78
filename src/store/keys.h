#pragma once
/// @file
/// @brief Virtual keys: `sk-sluice-<id>_<secret>`, one agent each.
///
/// The id (12 base32 chars) is public and names the key in listings, logs and
/// ledger rows; the secret is 256 random bits (base64url, 43 chars). Only a
/// per-key random salt and SHA-256(salt || full key) are stored, so a leaked
/// state file does not leak usable keys. Verification compares digests in
/// constant time.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace sluice::store {

struct KeyRecord {
  std::string id;     // public key id
  std::string agent;  // the agent this key acts as (for pipeline keys: the default, may be empty)
  bool pipeline = false;
  std::vector<std::string> acts_for;  // agents a pipeline key may name in X-Sluice-Agent
  int64_t created_unix = 0;
  std::optional<int64_t> revoked_unix;
  std::string salt_hex;
  std::string digest_hex;  // SHA-256(salt || key)
};

struct CreatedKey {
  KeyRecord record;
  std::string secret_key;  // the full sk-sluice-... string; shown once
};

/// Splits "sk-sluice-<id>_<secret>" into its id; nullopt if the shape is wrong.
[[nodiscard]] std::optional<std::string_view> keyIdOf(std::string_view key);

/// Generates a new key for `agent` (random from OpenSSL's CSPRNG).
[[nodiscard]] CreatedKey generateKey(std::string agent, bool pipeline, std::vector<std::string> acts_for,
                                     int64_t now_unix);

/// A record's salt and digest as bytes: what verifying a presented key
/// needs. The one place a key is hashed (generateKey writes the digest with
/// it; the gateway's key index verifies with it).
struct KeyDigest {
  std::array<unsigned char, 16> salt{};
  std::array<unsigned char, 32> digest{};  // SHA-256(salt || key)

  /// SHA-256(salt || key).
  [[nodiscard]] static std::array<unsigned char, 32> of(std::span<const unsigned char, 16> salt, std::string_view key);
  /// The record's salt and digest decoded from hex; nullopt for a corrupt row.
  [[nodiscard]] static std::optional<KeyDigest> fromRecord(const KeyRecord& record);
  /// True when `key` hashes to `digest` under `salt` (constant-time compare).
  [[nodiscard]] bool matches(std::string_view key) const;
};

/// Persistent key storage. Implementations are thread-compatible (one user
/// at a time); the gateway keeps its own in-memory index (KeyIndex).
class KeyStore {
 public:
  virtual ~KeyStore() = default;
  virtual core::Result<void> insert(const KeyRecord& record) = 0;
  [[nodiscard]] virtual core::Result<std::vector<KeyRecord>> list() = 0;
  /// Marks the key revoked; error if no such id.
  virtual core::Result<void> revoke(std::string_view id, int64_t now_unix) = 0;
  /// A number that changes whenever any key changed (by any process).
  [[nodiscard]] virtual core::Result<int64_t> version() = 0;
};

/// "sqlite:PATH" -> SQLite store (WAL); "memory" -> in-process store.
[[nodiscard]] core::Result<std::unique_ptr<KeyStore>> openKeyStore(std::string_view url);

}  // namespace sluice::store
