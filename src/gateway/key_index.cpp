#include "gateway/key_index.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace sluice::gateway {
namespace {

template <size_t N>
bool decodeHex(std::string_view hex, std::array<unsigned char, N>& out) {
  if (hex.size() != N * 2) return false;
  auto nib = [](char c) { return c >= '0' && c <= '9' ? c - '0' : (c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1); };
  for (size_t i = 0; i < N; ++i) {
    const int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

}  // namespace

KeyMap::KeyMap(const std::vector<store::KeyRecord>& records) {
  for (const auto& r : records) {
    if (r.revoked_unix) continue;
    KeyEntry e;
    if (!decodeHex(r.salt_hex, e.salt) || !decodeHex(r.digest_hex, e.digest)) continue;  // corrupt row: unusable
    e.record = r;
    keys_.emplace(r.id, std::move(e));
  }
}

const store::KeyRecord* KeyMap::verify(std::string_view presented) const {
  const auto id = store::keyIdOf(presented);
  if (!id) return nullptr;
  const auto it = keys_.find(*id);
  if (it == keys_.end()) return nullptr;
  const KeyEntry& e = it->second;
  std::array<unsigned char, 32> md{};
  unsigned int len = 0;
  // One-shot digest of salt || key, as store::keyMatches does, without
  // re-decoding the hex on every request.
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, e.salt.data(), e.salt.size());
  EVP_DigestUpdate(ctx, presented.data(), presented.size());
  EVP_DigestFinal_ex(ctx, md.data(), &len);
  EVP_MD_CTX_free(ctx);
  return CRYPTO_memcmp(md.data(), e.digest.data(), md.size()) == 0 ? &e.record : nullptr;
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
