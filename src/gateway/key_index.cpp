#include "gateway/key_index.h"

namespace sluice::gateway {

KeyMap::KeyMap(const std::vector<store::KeyRecord>& records) {
  for (const auto& r : records) {
    if (r.revoked_unix) continue;
    auto digest = store::KeyDigest::fromRecord(r);
    if (!digest) continue;  // corrupt row: unusable
    keys_.emplace(r.id, KeyEntry{r, *digest});
  }
}

const store::KeyRecord* KeyMap::verify(std::string_view presented) const {
  const auto id = store::keyIdOf(presented);
  if (!id) return nullptr;
  const auto it = keys_.find(*id);
  if (it == keys_.end()) return nullptr;
  const KeyEntry& e = it->second;
  return e.digest.matches(presented) ? &e.record : nullptr;
}

KeyIndex::KeyIndex(std::unique_ptr<store::KeyStore> store)
    : store_(std::move(store)), map_(std::make_shared<const KeyMap>(std::vector<store::KeyRecord>{})) {}

core::Result<void> KeyIndex::refresh() {
  auto v = store_->version();
  if (!v) return std::unexpected(v.error());
  if (*v == version_) return {};
  auto records = store_->list();
  if (!records) return std::unexpected(records.error());
  map_.publish(std::make_shared<const KeyMap>(*records));
  version_ = *v;
  return {};
}

}  // namespace sluice::gateway
