// Small helpers behind the messages: edit distance, suggestions, decimals.
#include <gtest/gtest.h>

#include "config/yaml_walker.h"

namespace sluice::config {
namespace {

TEST(EditDistanceTest, CountsEditsCaseInsensitively) {
  EXPECT_EQ(editDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(editDistance("", "abc"), 3u);
  EXPECT_EQ(editDistance("listen", "listen"), 0u);
  EXPECT_EQ(editDistance("teh", "the"), 1u);  // a swap of neighbours is one edit
  EXPECT_EQ(editDistance("Budgets", "budgets"), 0u);
}

TEST(ClosestMatchTest, SuggestsOnlyLikelyTypos) {
  const std::vector<std::string> keys{"listen", "max_body_bytes", "admin_key_env", "threads"};
  EXPECT_EQ(closestMatch("listn", keys), "listen");
  EXPECT_EQ(closestMatch("max_body_byte", keys), "max_body_bytes");
  EXPECT_EQ(closestMatch("theads", keys), "threads");
  EXPECT_EQ(closestMatch("port", keys), std::nullopt);
  EXPECT_EQ(closestMatch("x", keys), std::nullopt);
  EXPECT_EQ(didYouMean("listne", keys), "; did you mean 'listen'?");
  EXPECT_EQ(didYouMean("zzz", keys), "");
}

TEST(FormatTest, DecimalsAndLists) {
  EXPECT_EQ(formatDecimal6(200'000), "0.2");
  EXPECT_EQ(formatDecimal6(1'100'000), "1.1");
  EXPECT_EQ(formatDecimal6(5), "0.000005");
  EXPECT_EQ(formatDecimal6(3'000'000), "3");
  EXPECT_EQ(joinOr({"a"}), "a");
  EXPECT_EQ(joinOr({"a", "b"}), "a or b");
  EXPECT_EQ(joinOr({"a", "b", "c"}), "a, b or c");
}

}  // namespace
}  // namespace sluice::config
