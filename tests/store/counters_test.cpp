#include "store/counters.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace sluice::store {
namespace {

TEST(Counters, SqliteRoundTripReplacesTheWholeSet) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice_counters_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string url = "sqlite:" + (dir / "state.db").string();
  const std::vector<core::SavedCounter> first{
      {.scope = "agent:a", .window = core::BudgetWindow::kDay, .key = 20'000, .tokens = 10, .usd = 20, .calls = 1},
      {.scope = "run:r1", .window = core::BudgetWindow::kTotal, .key = 0, .tokens = 5, .usd = 7, .calls = 2}};
  {
    auto s = openCounterStore(url);
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_TRUE((*s)->save(first));
  }
  auto s = openCounterStore(url);
  ASSERT_TRUE(s);
  auto loaded = (*s)->load();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(*loaded, first);
  const std::vector<core::SavedCounter> second{
      {.scope = "global", .window = core::BudgetWindow::kMonth, .key = 24'322, .tokens = 1, .usd = 2, .calls = 3}};
  ASSERT_TRUE((*s)->save(second));
  EXPECT_EQ(*(*s)->load(), second);
  std::filesystem::remove_all(dir);
}

TEST(Counters, RestoredCountersKeepADaysSpend) {
  core::ManualClock clock;
  auto make = [&] { return std::make_unique<core::BudgetEngine>(clock, core::Calendar::utc()); };
  core::ScopeLimits limits;
  limits.day.calls = 2;
  auto before = make();
  auto id = before->defineScope("agent:a", limits);
  ASSERT_TRUE(id);
  for (int i = 0; i < 2; ++i) {
    auto r = before->reserve(std::span(&*id, 1), core::Ask{.prompt_tokens = 1, .max_output_tokens = 1});
    ASSERT_TRUE(r);
    before->settle(*r, core::TokenUsage{.input = 1, .output = 1}, 0);
  }
  auto store = openCounterStore("memory");
  ASSERT_TRUE((*store)->save(before->savedCounters()));

  auto after = make();  // a restarted process
  auto id2 = after->defineScope("agent:a", limits);
  ASSERT_TRUE(id2);
  after->restore(*(*store)->load());
  auto r = after->reserve(std::span(&*id2, 1), core::Ask{.prompt_tokens = 1, .max_output_tokens = 1});
  EXPECT_FALSE(r) << "the two calls of today were remembered";
}

}  // namespace
}  // namespace sluice::store
