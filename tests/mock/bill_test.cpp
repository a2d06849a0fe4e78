#include "mock/bill.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <thread>
#include <vector>

namespace sluice::mock {
namespace {

TEST(Bill, CountsPerModelAndTotals) {
  Bill bill;
  bill.recordReceived();
  bill.recordReceived();
  bill.recordReceived();
  bill.recordServed("a", 10, 5);
  bill.recordServed("b", 7, 0);
  bill.addCompletion("b", 3);
  bill.addCompletion("b", 0);
  bill.recordError(429, "a");
  bill.recordError(400, "");
  BillSnapshot s = bill.snapshot();
  EXPECT_EQ(s.requests_total, 3u);
  EXPECT_EQ(s.models["a"], (ModelBill{1, 10, 5, 1}));
  EXPECT_EQ(s.models["b"], (ModelBill{1, 7, 3, 0}));
  EXPECT_EQ(s.totals, (ModelBill{2, 17, 8, 2}));
  EXPECT_EQ(s.errors[429], 1u);
  EXPECT_EQ(s.errors[400], 1u);
  EXPECT_EQ(s.models.size(), 2u);  // no entry for the nameless error

  bill.reset();
  EXPECT_EQ(bill.snapshot().requests_total, 0u);
  EXPECT_TRUE(bill.snapshot().models.empty());
}

TEST(Bill, JsonHasTheDocumentedShape) {
  Bill bill;
  bill.recordReceived();
  bill.recordServed("gpt-4o-mini", 16, 64);
  bill.recordError(500, "gpt-4o-mini");
  const std::string text = bill.toJson();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(text).get(root), simdjson::SUCCESS) << text;
  int64_t v = 0;
  ASSERT_EQ(root.at_pointer("/models/gpt-4o-mini/prompt_tokens").get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, 16);
  ASSERT_EQ(root.at_pointer("/models/gpt-4o-mini/completion_tokens").get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, 64);
  ASSERT_EQ(root.at_pointer("/models/gpt-4o-mini/requests").get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, 1);
  ASSERT_EQ(root.at_pointer("/totals/total_tokens").get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, 80);
  ASSERT_EQ(root.at_pointer("/requests_total").get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, 1);
  ASSERT_EQ(root.at_pointer("/errors/500").get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, 1);
}

TEST(Bill, ModelCountIsBounded) {
  Bill bill;
  for (size_t i = 0; i < Bill::kMaxModels + 10; ++i) bill.recordServed("m" + std::to_string(i), 1, 1);
  BillSnapshot s = bill.snapshot();
  EXPECT_EQ(s.models.size(), Bill::kMaxModels + 1);
  EXPECT_EQ(s.models[std::string(Bill::kOverflowModel)].requests, 10u);
  EXPECT_EQ(s.totals.requests, Bill::kMaxModels + 10);
}

TEST(Bill, ThreadSafeCounting) {
  Bill bill;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&bill, t] {
      for (int i = 0; i < 5000; ++i) {
        bill.recordServed(t % 2 ? "odd" : "even", 2, 1);
        bill.addCompletion(t % 2 ? "odd" : "even", 1);
      }
    });
  }
  for (auto& th : threads) th.join();
  BillSnapshot s = bill.snapshot();
  EXPECT_EQ(s.totals.requests, 20000u);
  EXPECT_EQ(s.totals.prompt_tokens, 40000u);
  EXPECT_EQ(s.totals.completion_tokens, 40000u);
  EXPECT_EQ(s.models["odd"].requests, 10000u);
}

}  // namespace
}  // namespace sluice::mock
