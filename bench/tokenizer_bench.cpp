// Exact token counting (src/tokenizer), one thread, MB/s of text counted
// (bytes_per_second). The texts are what a Debian machine with
// scripts/setup.sh's packages holds, so the numbers are reproducible without
// network or npm:
//   prose         /usr/share/doc/*/copyright (English; names, licences)
//   code          C/C++ headers in /usr/include
//   multilingual  vim's tutorials in ~30 languages (vim-runtime)
//   mixed         the three interleaved in 4 KB slices: 45% prose, 40% code,
//                 15% multilingual by bytes
//   corpus        the differential test's corpus when SLUICE_TOKENIZER_CORPUS
//                 names its folder (build/release/tests/tokenizer_corpus after
//                 ctest -L tokenizer): 26 synthetic scripts of random
//                 letters (a worst case: hardly any piece is one token),
//                 JSON, emoji, whitespace, numbers, random strings
// Each text is counted whole per iteration, with o200k_base and cl100k_base.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "tokenizer/registry.h"

namespace sluice::tokenizer {
namespace {

namespace fs = std::filesystem;

std::string readAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string filesUnder(const fs::path& dir, const auto& take, size_t limit) {
  std::vector<fs::path> paths;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && take(it->path())) paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  std::string out;
  for (const auto& p : paths) {
    if (out.size() >= limit) break;
    out += readAll(p);
    out += '\n';
  }
  return out;
}

const std::string& text(const std::string& name) {
  static const std::map<std::string, std::string> texts = [] {
    std::map<std::string, std::string> t;
    t["prose"] = filesUnder(
        "/usr/share/doc", [](const fs::path& p) { return p.filename() == "copyright"; }, 4 << 20);
    t["code"] = filesUnder(
        "/usr/include",
        [](const fs::path& p) { return p.extension() == ".h" && p.string().find("/boost/") == std::string::npos; },
        4 << 20);
    std::string multi;
    for (const auto& d : fs::directory_iterator("/usr/share/vim")) {
      if (fs::exists(d.path() / "tutor")) {
        multi += filesUnder(
            d.path() / "tutor", [](const fs::path& p) { return p.extension() == ".utf-8"; }, 4 << 20);
      }
    }
    t["multilingual"] = multi;
    std::string mixed;
    const std::string* parts[] = {&t["prose"], &t["code"], &t["multilingual"]};
    const size_t shares[] = {9, 8, 3};  // slices of 4 KB per round
    size_t at[3] = {0, 0, 0};
    for (bool more = true; more;) {
      more = false;
      for (int k = 0; k < 3; ++k) {
        for (size_t s = 0; s < shares[k] && at[k] + 4096 <= parts[k]->size(); ++s, at[k] += 4096) {
          mixed.append(*parts[k], at[k], 4096);
          more = true;
        }
      }
    }
    t["mixed"] = mixed;
    if (const char* dir = std::getenv("SLUICE_TOKENIZER_CORPUS")) t["corpus"] = readAll(fs::path(dir) / "corpus.bin");
    return t;
  }();
  static const std::string empty;
  const auto it = texts.find(name);
  return it == texts.end() ? empty : it->second;
}

void BM_Count(benchmark::State& state, const char* encoding, const char* which) {
  auto enc = sharedEncoding(encoding);
  if (!enc) {
    state.SkipWithError(enc.error().c_str());
    return;
  }
  const std::string& t = text(which);
  if (t.empty()) {
    state.SkipWithError("no text (see the comment at the top of bench/tokenizer_bench.cpp)");
    return;
  }
  size_t tokens = 0;
  const bool cold = std::getenv("SLUICE_BENCH_WARM") == nullptr;
  for (auto _ : state) {
    // Each iteration counts the text as a fresh prompt: nothing remembered
    // from the iteration before (SLUICE_BENCH_WARM=1: a prompt sent again).
    if (cold) Encoding::forgetCachedCounts();
    tokens = (*enc)->count(t);
    benchmark::DoNotOptimize(tokens);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * t.size()));
  state.counters["MB"] = static_cast<double>(t.size()) / 1e6;
  state.counters["bytes/token"] = static_cast<double>(t.size()) / static_cast<double>(tokens);
}

BENCHMARK_CAPTURE(BM_Count, o200k_mixed, "o200k_base", "mixed")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Count, cl100k_mixed, "cl100k_base", "mixed")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Count, o200k_prose, "o200k_base", "prose")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Count, o200k_code, "o200k_base", "code")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Count, o200k_multilingual, "o200k_base", "multilingual")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Count, cl100k_multilingual, "cl100k_base", "multilingual")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Count, o200k_corpus, "o200k_base", "corpus")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Count, cl100k_corpus, "cl100k_base", "corpus")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sluice::tokenizer
