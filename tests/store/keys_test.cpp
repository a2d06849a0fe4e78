#include "store/keys.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace sluice::store {
namespace {

std::string tempDbUrl(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice_keys_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return "sqlite:" + (dir / "state.db").string();
}

TEST(Keys, GeneratedKeyHasShapeAndMatchesOnlyItself) {
  auto k = generateKey("drafter", false, {}, 100);
  ASSERT_TRUE(keyIdOf(k.secret_key).has_value());
  EXPECT_EQ(*keyIdOf(k.secret_key), k.record.id);
  EXPECT_TRUE(KeyDigest::fromRecord(k.record)->matches(k.secret_key));
  std::string tampered = k.secret_key;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(KeyDigest::fromRecord(k.record)->matches(tampered));
  auto other = generateKey("drafter", false, {}, 100);
  EXPECT_NE(other.secret_key, k.secret_key);
  EXPECT_NE(other.record.salt_hex, k.record.salt_hex);
  EXPECT_FALSE(KeyDigest::fromRecord(k.record)->matches(other.secret_key));
  // The stored record never contains the secret.
  EXPECT_EQ(k.record.digest_hex.find(k.secret_key.substr(23)), std::string::npos);
}

TEST(Keys, KeyIdRejectsMalformedKeys) {
  EXPECT_FALSE(keyIdOf("").has_value());
  EXPECT_FALSE(keyIdOf("sk-proj-abc").has_value());
  EXPECT_FALSE(keyIdOf("sk-sluice-short_x").has_value());
  EXPECT_FALSE(keyIdOf(std::string("sk-sluice-") + std::string(12, 'a') + "-" + std::string(43, 'b')).has_value());
  EXPECT_TRUE(keyIdOf(std::string("sk-sluice-") + std::string(12, 'a') + "_" + std::string(43, 'b')).has_value());
}

TEST(Keys, SqliteStorePersistsRevokesAndVersions) {
  const auto url = tempDbUrl("persist");
  auto k = generateKey("retriever", true, {"a", "b"}, 42);
  {
    auto store = openKeyStore(url);
    ASSERT_TRUE(store) << store.error().message;
    auto v0 = (*store)->version();
    ASSERT_TRUE(v0);
    ASSERT_TRUE((*store)->insert(k.record));
    auto v1 = (*store)->version();
    EXPECT_GT(*v1, *v0);
  }
  auto store = openKeyStore(url);
  ASSERT_TRUE(store);
  auto list = (*store)->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  const auto& r = list->front();
  EXPECT_EQ(r.id, k.record.id);
  EXPECT_EQ(r.agent, "retriever");
  EXPECT_TRUE(r.pipeline);
  EXPECT_EQ(r.acts_for, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(KeyDigest::fromRecord(r)->matches(k.secret_key));
  EXPECT_FALSE(r.revoked_unix.has_value());

  const auto before = *(*store)->version();
  ASSERT_TRUE((*store)->revoke(r.id, 99));
  EXPECT_GT(*(*store)->version(), before);
  EXPECT_EQ((*(*store)->list())[0].revoked_unix, 99);
  EXPECT_TRUE((*store)->revoke(r.id, 100));  // again: harmless
  auto missing = (*store)->revoke("nosuchkey", 1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, core::ErrorCode::kNotFound);
}

TEST(Keys, MemoryStoreBehavesLikeSqlite) {
  auto store = openKeyStore("memory");
  ASSERT_TRUE(store);
  auto k = generateKey("x", false, {}, 1);
  ASSERT_TRUE((*store)->insert(k.record));
  EXPECT_FALSE((*store)->insert(k.record));
  ASSERT_TRUE((*store)->revoke(k.record.id, 2));
  EXPECT_FALSE((*store)->revoke("zzz", 2));
}

TEST(Keys, UnsupportedUrlIsAClearError) {
  auto store = openKeyStore("mysql://x");
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().message.find("unsupported"), std::string::npos);
}

}  // namespace
}  // namespace sluice::store
