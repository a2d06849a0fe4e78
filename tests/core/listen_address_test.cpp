#include "core/listen_address.h"

#include <gtest/gtest.h>

namespace sluice::core {
namespace {

TEST(ListenAddress, HostAndPort) {
  const auto a = parseListenAddress("127.0.0.1:4000");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 4000);
  const auto v6 = parseListenAddress("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  EXPECT_EQ(parseListenAddress("0.0.0.0:65535")->port, 65535);
}

TEST(ListenAddress, RefusesWhatIsNotHostColonPort) {
  for (const char* bad : {"localhost", ":4000", "[]:4000", "host:", "host:65536", "host:123456", "host:+80", "host: 80",
                          "ho st:80", "a/b:80", "host:8o"}) {
    EXPECT_FALSE(parseListenAddress(bad)) << bad;
  }
}

}  // namespace
}  // namespace sluice::core
