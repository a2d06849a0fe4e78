#pragma once
/// @file
/// @brief The gateway's in-memory view of the virtual keys, refreshed from the
/// KeyStore when any process changed a key (e.g. `sluice keys revoke`).

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "core/string_hash.h"
#include "gateway/published.h"
#include "store/keys.h"

namespace sluice::gateway {

struct KeyEntry {
  store::KeyRecord record;
  store::KeyDigest digest;  // decoded once, not on every request
};

/// Immutable id -> key map (only active keys).
class KeyMap {
 public:
  explicit KeyMap(const std::vector<store::KeyRecord>& records);
  /// The record for `presented` if its id exists and its digest matches
  /// (constant-time compare). nullptr otherwise.
  [[nodiscard]] const store::KeyRecord* verify(std::string_view presented) const;
  [[nodiscard]] size_t size() const { return keys_.size(); }

 private:
  std::unordered_map<std::string, KeyEntry, core::StringHash, std::equal_to<>> keys_;
};

class KeyIndex {
 public:
  explicit KeyIndex(std::unique_ptr<store::KeyStore> store);
  /// Reloads the map if the store's version changed. Called from a timer,
  /// off the request path. Thread-compatible (one refresher).
  core::Result<void> refresh();
  [[nodiscard]] const Published<KeyMap>& published() const { return map_; }

 private:
  std::unique_ptr<store::KeyStore> store_;
  int64_t version_ = -1;
  Published<KeyMap> map_;
};

}  // namespace sluice::gateway
