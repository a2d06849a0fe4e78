/// @file
/// @brief Throughput of the prompt token estimate (core::estimateTextTokens)
/// over mixed message text of 1 KB, 16 KB and 128 KB: prose in a few
/// languages, source code and JSON, as prompts mix them.
///
/// The estimate runs on every string of every request body, so its speed
/// matters most for long prompts. BM_EstimateMixed uses the implementation
/// the gateway picks; BM_EstimateMixedIsa each implementation (scalar,
/// AVX2); BM_EstimateMixedLegacy the estimator before the bitmask rewrite
/// (bench/legacy_token_estimate.h), for before/after in one run:
///
///   build/release/bench/token_estimate_bench --benchmark_repetitions=9
///     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
///     (one command line)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/token_estimate.h"

#include "core/token_estimate_detail.h"
#include "legacy_token_estimate.h"

namespace {

constexpr std::string_view kProse =
    "The committee met on Tuesday to review the quarterly results. Revenue grew in every region except the "
    "north-east, where a late shipment pushed two large orders into the next quarter. ";
constexpr std::string_view kGerman =
    "Bewegen Sie den Cursor zu der Zeile, die mit ---> markiert ist, und löschen Sie die überflüssigen Zeichen. ";
constexpr std::string_view kRussian = "Переместите курсор к строке, помеченной --->, и удалите лишние символы. ";
constexpr std::string_view kChinese = "将光标移动到标记为 ---> 的行，然后删除多余的字符。";
constexpr std::string_view kCode =
    "template <typename T>\nstd::vector<T> topK(std::vector<T> values, std::size_t k) {\n"
    "  k = std::min(k, values.size());\n  std::partial_sort(values.begin(), values.begin() + k, values.end(),\n"
    "                    [](const T& a, const T& b) { return a > b; });\n  return values;\n}\n";
constexpr std::string_view kJson =
    R"({"type":"function","function":{"name":"get_weather","description":"Get the current weather for a city.",)"
    R"("parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}}}}} )";

// `bytes` of the units above in turn (cut at the end: the estimate takes any
// bytes).
std::string mixed(size_t bytes) {
  std::string out;
  for (size_t i = 0; out.size() < bytes; ++i) {
    switch (i % 8) {
      case 0:
      case 3:
      case 6: out += kProse; break;
      case 1: out += kCode; break;
      case 2: out += kJson; break;
      case 4: out += kGerman; break;
      case 5: out += kRussian; break;
      default: out += kChinese; break;
    }
  }
  out.resize(bytes);
  return out;
}

void BM_EstimateMixed(benchmark::State& state) {
  const std::string text = mixed(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    std::string_view t = text;
    benchmark::DoNotOptimize(t);
    benchmark::DoNotOptimize(sluice::core::estimateTextTokens(t));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EstimateMixed)->Arg(1 << 10)->Arg(16 << 10)->Arg(128 << 10);

void BM_EstimateMixedLegacy(benchmark::State& state) {
  const std::string text = mixed(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    std::string_view t = text;
    benchmark::DoNotOptimize(t);
    benchmark::DoNotOptimize(sluice::bench::legacy::estimateTextTokens(t));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EstimateMixedLegacy)->Arg(1 << 10)->Arg(16 << 10)->Arg(128 << 10);

void BM_EstimateMixedIsa(benchmark::State& state) {
  namespace d = sluice::core::token_estimate_detail;
  const auto isa = static_cast<d::Isa>(state.range(1));
  if (!d::isaSupported(isa)) {
    state.SkipWithError("not supported on this CPU");
    return;
  }
  const std::string text = mixed(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    std::string_view t = text;
    benchmark::DoNotOptimize(t);
    benchmark::DoNotOptimize(d::measureWith(isa, t));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
// Second argument: 0 scalar, 1 AVX2.
BENCHMARK(BM_EstimateMixedIsa)->ArgsProduct({{1 << 10, 16 << 10, 128 << 10}, {0, 1}});

}  // namespace
