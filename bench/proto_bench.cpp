// Hot-path costs of the OpenAI wire layer: request inspection + rewrite of a
// typical ~2 KB chat request, and the stream filter over a 50-chunk stream.

#include <benchmark/benchmark.h>

#include <string>

#include "proto/errors.h"
#include "proto/request.h"
#include "proto/rewrite.h"
#include "proto/sse.h"
#include "proto/stream_filter.h"

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
  s += "data: " + head + R"({"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null})" + "\n\n";
  for (int i = 0; i < 47; ++i) {
    s += "data: " + head + R"({"content":" token"},"logprobs":null,"finish_reason":null}],"usage":null})" + "\n\n";
  }
  s += "data: " + head + R"({},"logprobs":null,"finish_reason":"stop"}],"usage":null})" + "\n\n";
  s += R"(data: {"id":"chatcmpl-AB12x","object":"chat.completion.chunk","created":1727346171,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":79,"completion_tokens":48,"total_tokens":127}})"
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

}  // namespace
