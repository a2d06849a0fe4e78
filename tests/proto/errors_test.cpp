#include "proto/errors.h"

#include <gtest/gtest.h>

#include "core/error_body.h"
#include "proto/proto_test_util.h"

namespace sluice::proto {
namespace {

TEST(ErrorBody, BudgetExhaustedShape) {
  EXPECT_EQ(errorBody(core::ErrorCode::kBudgetExhausted, "Budget exhausted for key k; resets at 2026-11-25T00:00:00Z"),
            R"({"error":{"message":"Budget exhausted for key k; resets at 2026-11-25T00:00:00Z",)"
            R"("type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
}

TEST(ErrorBody, NullCodeAndParam) {
  EXPECT_EQ(errorBody(core::ErrorCode::kInvalidRequest, "bad", "max_tokens"),
            R"({"error":{"message":"bad","type":"invalid_request_error","param":"max_tokens","code":null}})");
  EXPECT_EQ(errorBody(core::ErrorCode::kInternal, "oops"),
            R"({"error":{"message":"oops","type":"server_error","param":null,"code":null}})");
}

TEST(ErrorBody, HostileMessageStaysValidJson) {
  const std::string hostile = std::string("\"},\"x\":1,\"y\":\"\x01\xff\n\\") + std::string(1, '\0') + "</script>";
  const std::string body = errorBody(core::ErrorCode::kRateLimitTokens, hostile, "p\"aram");
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  ASSERT_TRUE(testing::parseJson(parser, body, e)) << body;
  simdjson::dom::object err;
  ASSERT_FALSE(e["error"].get_object().get(err));
  EXPECT_EQ(testing::keyCount(err, "message"), 1);
  EXPECT_EQ(testing::keyCount(err, "x"), 0);
  std::string_view type, param, code;
  ASSERT_FALSE(err["type"].get_string().get(type));
  ASSERT_FALSE(err["param"].get_string().get(param));
  ASSERT_FALSE(err["code"].get_string().get(code));
  EXPECT_EQ(type, "tokens");
  EXPECT_EQ(param, "p\"aram");
  EXPECT_EQ(code, "rate_limit_exceeded");
  EXPECT_EQ(body.find('\n'), std::string::npos);  // one line: safe inside an SSE data field
}

TEST(ErrorBody, EveryCodeProducesValidJson) {
  simdjson::dom::parser parser;
  for (int c = 0; c <= static_cast<int>(core::ErrorCode::kConfig); ++c) {
    const auto code = static_cast<core::ErrorCode>(c);
    const std::string body = errorBody(code, "m");
    simdjson::dom::element e;
    ASSERT_TRUE(testing::parseJson(parser, body, e)) << body;
    simdjson::dom::object err;
    ASSERT_FALSE(e["error"].get_object().get(err));
    for (const char* key : {"message", "type", "param", "code"}) EXPECT_EQ(testing::keyCount(err, key), 1) << key;
  }
}

TEST(ErrorBody, AppendErrorObjectRelaysProviderFields) {
  std::string out = "x";
  core::appendErrorObject(out, "Overloaded", "overloaded_error", "", "");
  EXPECT_EQ(out, R"(x{"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}})");
}

}  // namespace
}  // namespace sluice::proto
