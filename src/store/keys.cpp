#include "store/keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <map>
#include <mutex>

#include "store/sqlite_db.h"

namespace sluice::store {
namespace {

constexpr std::string_view kPrefix = "sk-sluice-";
constexpr size_t kIdLen = 12;
constexpr size_t kSecretLen = 43;  // base64url of 32 bytes, no padding

void randomBytes(unsigned char* out, size_t n) {
  // RAND_bytes only fails when the CSPRNG cannot be seeded; issuing a key
  // from a broken RNG would be worse than stopping.
  if (RAND_bytes(out, static_cast<int>(n)) != 1) std::abort();
}

std::string toHex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[p[i] >> 4];
    s[2 * i + 1] = kHex[p[i] & 15];
  }
  return s;
}

std::string base32Id() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::array<unsigned char, kIdLen> raw{};
  randomBytes(raw.data(), raw.size());
  std::string id(kIdLen, 'a');
  for (size_t i = 0; i < kIdLen; ++i) id[i] = kAlphabet[raw[i] & 31];
  return id;
}

std::string base64Url(const unsigned char* p, size_t n) {
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((n * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
  }
  return out;
}

bool fromHex(std::string_view hex, unsigned char* out, size_t n) {
  if (hex.size() != n * 2) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < n; ++i) {
    const int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

std::string joinAgents(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) {
    if (!s.empty()) s += ',';
    s += a;
  }
  return s;
}

std::vector<std::string> splitAgents(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    auto part = s.substr(0, comma);
    if (!part.empty()) out.emplace_back(part);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

class SqliteKeyStore final : public KeyStore {
 public:
  explicit SqliteKeyStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  core::Result<void> init() {
    return db_->exec(
        "CREATE TABLE IF NOT EXISTS virtual_keys ("
        " id TEXT PRIMARY KEY, agent TEXT NOT NULL, pipeline INTEGER NOT NULL DEFAULT 0,"
        " acts_for TEXT NOT NULL DEFAULT '', created_unix INTEGER NOT NULL, revoked_unix INTEGER,"
        " salt TEXT NOT NULL, digest TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS key_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);"
        "INSERT OR IGNORE INTO key_version VALUES (1, 0);");
  }

  core::Result<void> insert(const KeyRecord& r) override {
    auto st = db_->prepare(
        "INSERT INTO virtual_keys (id, agent, pipeline, acts_for, created_unix, revoked_unix, salt, digest)"
        " VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)");
    if (!st) return std::unexpected(st.error());
    st->bind(1, r.id).bind(2, r.agent).bind(3, int64_t{r.pipeline}).bind(4, joinAgents(r.acts_for));
    st->bind(5, r.created_unix).bind(6, r.salt_hex).bind(7, r.digest_hex);
    if (auto x = st->run(); !x) return x;
    return bumpVersion();
  }

  core::Result<std::vector<KeyRecord>> list() override {
    auto st = db_->prepare(
        "SELECT id, agent, pipeline, acts_for, created_unix, revoked_unix, salt, digest FROM virtual_keys ORDER BY created_unix, id");
    if (!st) return std::unexpected(st.error());
    std::vector<KeyRecord> out;
    while (true) {
      auto row = st->step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      KeyRecord r;
      r.id = st->text(0);
      r.agent = st->text(1);
      r.pipeline = st->int64(2) != 0;
      r.acts_for = splitAgents(st->text(3));
      r.created_unix = st->int64(4);
      if (!st->isNull(5)) r.revoked_unix = st->int64(5);
      r.salt_hex = st->text(6);
      r.digest_hex = st->text(7);
      out.push_back(std::move(r));
    }
    return out;
  }

  core::Result<void> revoke(std::string_view id, int64_t now_unix) override {
    auto st = db_->prepare("UPDATE virtual_keys SET revoked_unix = ?2 WHERE id = ?1 AND revoked_unix IS NULL");
    if (!st) return std::unexpected(st.error());
    st->bind(1, id).bind(2, now_unix);
    if (auto x = st->run(); !x) return x;
    if (sqlite3_changes(db_->raw()) == 0) {
      auto exists = db_->prepare("SELECT 1 FROM virtual_keys WHERE id = ?1");
      if (!exists) return std::unexpected(exists.error());
      exists->bind(1, id);
      auto row = exists->step();
      if (!row) return std::unexpected(row.error());
      if (!*row) return core::fail(core::ErrorCode::kNotFound, "no key with id '" + std::string(id) + "'");
      return {};  // already revoked: revoking again is harmless
    }
    return bumpVersion();
  }

  core::Result<int64_t> version() override {
    auto st = db_->prepare("SELECT version FROM key_version WHERE id = 1");
    if (!st) return std::unexpected(st.error());
    auto row = st->step();
    if (!row) return std::unexpected(row.error());
    return *row ? st->int64(0) : 0;
  }

 private:
  core::Result<void> bumpVersion() { return db_->exec("UPDATE key_version SET version = version + 1 WHERE id = 1"); }

  std::unique_ptr<SqliteDb> db_;
};

class MemoryKeyStore final : public KeyStore {
 public:
  core::Result<void> insert(const KeyRecord& r) override {
    std::lock_guard lock(mu_);
    if (!keys_.emplace(r.id, r).second) return core::fail(core::ErrorCode::kInternal, "duplicate key id");
    ++version_;
    return {};
  }
  core::Result<std::vector<KeyRecord>> list() override {
    std::lock_guard lock(mu_);
    std::vector<KeyRecord> out;
    for (const auto& [id, r] : keys_) out.push_back(r);
    return out;
  }
  core::Result<void> revoke(std::string_view id, int64_t now_unix) override {
    std::lock_guard lock(mu_);
    auto it = keys_.find(std::string(id));
    if (it == keys_.end()) return core::fail(core::ErrorCode::kNotFound, "no key with id '" + std::string(id) + "'");
    if (!it->second.revoked_unix) {
      it->second.revoked_unix = now_unix;
      ++version_;
    }
    return {};
  }
  core::Result<int64_t> version() override {
    std::lock_guard lock(mu_);
    return version_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, KeyRecord> keys_;
  int64_t version_ = 0;
};

}  // namespace

std::optional<std::string_view> keyIdOf(std::string_view key) {
  if (!key.starts_with(kPrefix)) return std::nullopt;
  key.remove_prefix(kPrefix.size());
  if (key.size() != kIdLen + 1 + kSecretLen || key[kIdLen] != '_') return std::nullopt;
  return key.substr(0, kIdLen);
}

CreatedKey generateKey(std::string agent, bool pipeline, std::vector<std::string> acts_for, int64_t now_unix) {
  std::array<unsigned char, 32> secret{};
  randomBytes(secret.data(), secret.size());
  std::array<unsigned char, 16> salt{};
  randomBytes(salt.data(), salt.size());

  CreatedKey out;
  out.record.id = base32Id();
  out.secret_key = std::string(kPrefix) + out.record.id + "_" + base64Url(secret.data(), secret.size());
  out.record.agent = std::move(agent);
  out.record.pipeline = pipeline;
  out.record.acts_for = std::move(acts_for);
  out.record.created_unix = now_unix;
  out.record.salt_hex = toHex(salt.data(), salt.size());
  const auto md = KeyDigest::of(salt, out.secret_key);
  out.record.digest_hex = toHex(md.data(), md.size());
  OPENSSL_cleanse(secret.data(), secret.size());
  return out;
}

std::array<unsigned char, 32> KeyDigest::of(std::span<const unsigned char, 16> salt, std::string_view key) {
  std::array<unsigned char, 32> md{};
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, salt.data(), salt.size());
  EVP_DigestUpdate(ctx, key.data(), key.size());
  EVP_DigestFinal_ex(ctx, md.data(), &len);
  EVP_MD_CTX_free(ctx);
  return md;
}

std::optional<KeyDigest> KeyDigest::fromRecord(const KeyRecord& record) {
  KeyDigest d;
  if (!fromHex(record.salt_hex, d.salt.data(), d.salt.size()) ||
      !fromHex(record.digest_hex, d.digest.data(), d.digest.size())) {
    return std::nullopt;
  }
  return d;
}

bool KeyDigest::matches(std::string_view key) const {
  const auto got = of(salt, key);
  return CRYPTO_memcmp(got.data(), digest.data(), digest.size()) == 0;
}

core::Result<std::unique_ptr<KeyStore>> openKeyStore(std::string_view url) {
  if (url == "memory") return std::unique_ptr<KeyStore>(std::make_unique<MemoryKeyStore>());
  auto path = sqlitePathOf(url);
  if (!path)
    return core::fail(core::ErrorCode::kConfig,
                      "unsupported state store '" + std::string(url) + "' (use sqlite:PATH or memory)");
  auto db = SqliteDb::open(*path);
  if (!db) return std::unexpected(db.error());
  auto store = std::make_unique<SqliteKeyStore>(std::move(*db));
  if (auto r = store->init(); !r) return std::unexpected(r.error());
  return std::unique_ptr<KeyStore>(std::move(store));
}

}  // namespace sluice::store
