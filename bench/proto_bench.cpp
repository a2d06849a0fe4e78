// Hot-path costs of the OpenAI wire layer: request inspection + rewrite of a
// typical ~2 KB chat request, the stream filter over a 50-chunk stream, and the
// summary (usage, finish_reason, ...) of non-streaming response bodies.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json_text.h"
#include "core/token_estimate.h"
#include "proto/errors.h"
#include "proto/request.h"
#include "proto/rewrite.h"
#include "proto/sse.h"
#include "proto/stream_filter.h"
#include "proto/usage.h"

namespace {

using namespace sluice::proto;

std::string typicalChatRequest() {
  std::string body = R"({"model":"gpt-4.1","stream":true,"temperature":0.2,"messages":[)";
  body += R"({"role":"system","content":"You are the intent classifier of a customer support pipeline. )"
          R"(Answer with one of: billing, shipping, returns, technical, other. Be brief and precise."},)";
  for (int i = 0; i < 6; ++i) {
    body += R"({"role":"user","content":"Hello, I ordered a pair of headphones last week (order #12345) and the )"
            R"(tracking page has not changed since Tuesday. Can you tell me when it will arrive?"},)";
    body += R"({"role":"assistant","content":"shipping"},)";
  }
  body += R"({"role":"user","content":"Also, können Sie mir die Rechnung noch einmal schicken? Danke!"}],)";
  body += R"("tools":[{"type":"function","function":{"name":"lookup_order","description":"Look up an order by id",)"
          R"("parameters":{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}}}],)";
  body += R"("metadata":{"agent":"intent_classifier","run":"r-42"}})";
  reserveJsonPadding(body);
  return body;
}

std::string fiftyChunkStream() {
  const std::string head =
      R"({"id":"chatcmpl-AB12x","object":"chat.completion.chunk","created":1727346171,"model":"gpt-4o-2024-08-06",)"
      R"("system_fingerprint":"fp_7568d46099","choices":[{"index":0,"delta":)";
  std::string s;
  s += "data: " + head +
       R"({"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null})" +
       "\n\n";
  for (int i = 0; i < 47; ++i) {
    s += "data: " + head + R"({"content":" token"},"logprobs":null,"finish_reason":null}],"usage":null})" + "\n\n";
  }
  s += "data: " + head + R"({},"logprobs":null,"finish_reason":"stop"}],"usage":null})" + "\n\n";
  s +=
      R"(data: {"id":"chatcmpl-AB12x","object":"chat.completion.chunk","created":1727346171,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":79,"completion_tokens":48,"total_tokens":127}})"
      "\n\n";
  s += "data: [DONE]\n\n";
  return s;
}

void BM_InspectChat(benchmark::State& state) {
  const std::string body = typicalChatRequest();
  for (auto _ : state) {
    auto view = inspectChatRequest(body, body.capacity());
    benchmark::DoNotOptimize(view);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK(BM_InspectChat);

// The request bench/load.sh sends: a short two-message chat (189 bytes),
// where per-call costs dominate.
// Inspection as the gateway does it (gateway/exchange.cpp inspect()): parse
// a 128 KB chat request whose messages mix prose, code and JSON, measure
// every prompt string once (estimate and non-ASCII count together) and sum
// the prompt estimate.
std::string largeChatRequest(size_t bytes) {
  // NOLINTBEGIN(bugprone-suspicious-missing-comma): long units are split over two lines
  static constexpr std::string_view kUnits[] = {
      "The committee met on Tuesday to review the quarterly results. Revenue grew in every region except the "
      "north-east, where a late shipment pushed two large orders into the next quarter. ",
      "template <typename T>\nstd::vector<T> topK(std::vector<T> values, std::size_t k) {\n"
      "  k = std::min(k, values.size());\n  return values;\n}\n",
      R"({"type":"function","function":{"name":"get_weather","parameters":{"city":"Paris","unit":"c"}}} )",
      "Bewegen Sie den Cursor zu der Zeile, die mit ---> markiert ist, und löschen Sie die Zeichen. ",
      "Переместите курсор к строке, помеченной --->, и удалите лишние символы. ",
      "将光标移动到标记为 ---> 的行，然后删除多余的字符。"};
  // NOLINTEND(bugprone-suspicious-missing-comma)
  std::string body = R"({"model":"gpt-4.1","messages":[)";
  size_t k = 0;
  while (body.size() < bytes) {
    std::string text;
    for (int i = 0; i < 40; ++i) text += kUnits[(k + static_cast<size_t>(i)) % std::size(kUnits)];
    body += k % 2 == 0 ? R"({"role":"user","content":)" : R"({"role":"assistant","content":)";
    sluice::core::appendJsonString(body, text);
    body += "},";
    ++k;
  }
  body.back() = ']';
  body += R"(,"max_tokens":1000})";
  reserveJsonPadding(body);
  return body;
}

void BM_InspectChat128K(benchmark::State& state) {
  const std::string body = largeChatRequest(128 << 10);
  for (auto _ : state) {
    auto view = inspectChatRequest(body, body.capacity());
    sluice::core::PromptShape shape;
    shape.messages = view->prompt.messages;
    shape.text_tokens = view->prompt.text_tokens;
    benchmark::DoNotOptimize(sluice::core::estimatePromptTokens(shape));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK(BM_InspectChat128K)->Unit(benchmark::kMicrosecond);

void BM_InspectChatSmall(benchmark::State& state) {
  std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a support agent."},)"
                     R"({"role":"user","content":"My order 1234 arrived damaged. What can I do?"}],"max_tokens":16})";
  reserveJsonPadding(body);
  for (auto _ : state) {
    auto view = inspectChatRequest(body, body.capacity());
    benchmark::DoNotOptimize(view);
  }
  state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK(BM_InspectChatSmall);

void BM_InspectChatUnpadded(benchmark::State& state) {
  const std::string body = typicalChatRequest();
  for (auto _ : state) {
    auto view = inspectChatRequest(body);  // copies into the thread-local padded buffer
    benchmark::DoNotOptimize(view);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_InspectChatUnpadded);

void BM_InspectAndRewrite(benchmark::State& state) {
  const std::string body = typicalChatRequest();
  RewriteOptions options;
  options.model = "deepseek-v3.2";
  options.output_cap = 4000;
  std::string out;
  for (auto _ : state) {
    auto view = inspectChatRequest(body, body.capacity());
    out.clear();
    appendRewrittenRequest(out, body, view->layout, options);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_InspectAndRewrite);

void BM_SseParser50Chunks(benchmark::State& state) {
  const std::string stream = fiftyChunkStream();
  for (auto _ : state) {
    SseParser parser;
    size_t bytes = 0;
    auto r = parser.put(stream, [&](const SseEvent& e) { bytes += e.data.size(); });
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_SseParser50Chunks);

// state.range(0): 1 = client asked for usage (pass-through), 0 = strip.
// state.range(1): upstream read size (bytes per put), 0 = whole stream at once.
void BM_StreamFilter50Chunks(benchmark::State& state) {
  const std::string stream = fiftyChunkStream();
  const bool wants = state.range(0) != 0;
  const size_t piece = state.range(1) == 0 ? stream.size() : static_cast<size_t>(state.range(1));
  std::string out;
  out.reserve(stream.size());
  for (auto _ : state) {
    StreamFilter filter({.client_wants_usage = wants});
    out.clear();
    for (size_t pos = 0; pos < stream.size(); pos += piece) {
      auto r = filter.put(std::string_view(stream).substr(pos, piece), out);
      benchmark::DoNotOptimize(r);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["chunks"] = 50;
}
BENCHMARK(BM_StreamFilter50Chunks)->Args({0, 0})->Args({1, 0})->Args({0, 1400});

void BM_ErrorBody(benchmark::State& state) {
  for (auto _ : state) {
    auto body = errorBody(sluice::core::ErrorCode::kBudgetExhausted,
                          "Budget exhausted for key sk-sluice-abc; resets at 2026-11-25T00:00:00Z");
    benchmark::DoNotOptimize(body);
  }
}
BENCHMARK(BM_ErrorBody);

// --- summarizeResponse: called once per non-streaming upstream response. ---

std::string chatResponse(std::string_view content) {
  std::string body =
      R"({"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,)"
      R"("model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":")";
  body += content;
  body += R"(","refusal":null},"logprobs":null,"finish_reason":"stop"}],)"
          R"("usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,)"
          R"("prompt_tokens_details":{"cached_tokens":1024},"completion_tokens_details":{"reasoning_tokens":0}},)"
          R"("system_fingerprint":"fp_fc9f1d7035"})";
  reserveJsonPadding(body);
  return body;
}

// Pretty-printed as OpenAI sends it: ~30 KB for 1536 floats.
std::string embeddingsResponse() {
  std::string body =
      "{\n  \"object\": \"list\",\n  \"data\": [\n    {\n      \"object\": \"embedding\",\n"
      "      \"index\": 0,\n      \"embedding\": [";
  uint32_t x = 12345;
  for (int i = 0; i < 1536; ++i) {
    x = x * 1103515245u + 12345u;  // deterministic pseudo-random floats, realistic widths
    const int mantissa = static_cast<int>(x >> 8) % 100000000;
    body += i > 0 ? ",\n        " : "\n        ";
    if ((x & 2) != 0) body += '-';
    body += "0.0";
    body += std::to_string(mantissa);
    if ((x & 0x1c) == 0) body += "e-05";
  }
  body +=
      "\n      ]\n    }\n  ],\n  \"model\": \"text-embedding-3-small\",\n"
      "  \"usage\": {\n    \"prompt_tokens\": 8,\n    \"total_tokens\": 8\n  }\n}\n";
  reserveJsonPadding(body);
  return body;
}

void runSummarize(benchmark::State& state, const std::string& body) {
  for (auto _ : state) {
    auto summary = summarizeResponse(body, body.capacity());
    benchmark::DoNotOptimize(summary);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}

void BM_SummarizeResponse_Chat(benchmark::State& state) {
  runSummarize(state, chatResponse("Hello! How can I assist you today?"));
}
BENCHMARK(BM_SummarizeResponse_Chat);

void BM_SummarizeResponse_ChatLong(benchmark::State& state) {
  std::string content;
  while (content.size() < 4000) {
    content += "The shipment left our warehouse on Tuesday and is expected to arrive within three business days. ";
    content += R"(Tracking: \"UPS 1Z999AA10123456784\"\n)";
  }
  runSummarize(state, chatResponse(content));
}
BENCHMARK(BM_SummarizeResponse_ChatLong);

void BM_SummarizeResponse_Embeddings(benchmark::State& state) { runSummarize(state, embeddingsResponse()); }
BENCHMARK(BM_SummarizeResponse_Embeddings);

// Like _Chat, but cycling through 64 bodies whose token counts and content
// lengths differ, as real traffic does (one repeated body lets the branch
// predictor learn every digit count and string length).
void BM_SummarizeResponse_ChatVaried(benchmark::State& state) {
  std::vector<std::string> bodies;
  uint32_t x = 7;
  auto next = [&x] {
    x = x * 1103515245u + 12345u;
    return x >> 8;
  };
  const std::string sentence = "Sure, here is what I found about your order. ";
  for (int i = 0; i < 64; ++i) {
    static constexpr uint32_t kMods[] = {10, 100, 1000, 10000, 100000};
    auto count = [&] { return std::to_string(next() % kMods[next() % 5]); };
    std::string content;
    for (uint32_t k = next() % 4; k > 0; --k) content += sentence;
    std::string body =
        R"({"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,)"
        R"("model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! )" +
        content + R"(","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":)" + count() +
        R"(,"completion_tokens":)" + count() + R"(,"total_tokens":)" + count() +
        R"(,"prompt_tokens_details":{"cached_tokens":)" + count() +
        R"(},"completion_tokens_details":)"
        R"({"reasoning_tokens":)" +
        count() + R"(}},"system_fingerprint":"fp_fc9f1d7035"})";
    reserveJsonPadding(body);
    bodies.push_back(std::move(body));
  }
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    const std::string& body = bodies[i++ & 63];
    auto summary = summarizeResponse(body, body.capacity());
    benchmark::DoNotOptimize(summary);
    bytes += static_cast<int64_t>(body.size());
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_SummarizeResponse_ChatVaried);

}  // namespace
