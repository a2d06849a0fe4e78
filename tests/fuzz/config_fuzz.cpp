// libFuzzer target: the YAML configuration loader (config/loader.h), with the
// input as the configuration (against the tests' price catalog) and as the
// price catalog (under a small fixed configuration).
//
// Properties, besides no crash, leak or undefined behaviour (a hostile or
// broken file must only ever give diagnostics):
//  - Loading is deterministic: the same text loaded twice gives the same
//    diagnostics, or configurations with the same summary and hash.
//  - Diagnostics are well-formed: at least one when loading fails; each names
//    the file, sits at a 1-based line:column inside the text (or 0:0 for the
//    whole file), is one non-empty line, and they come in file order.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "config/loader.h"
#include "fuzz_util.h"

namespace sluice::fuzz {
namespace {

// The test catalog (tests/data/config/prices_test.yaml): a quarter of the
// shipped one's size, so more of the time goes to the fuzzed text.
const std::string& testCatalog() {
  static const std::string text = [] {
    std::ifstream in(std::string(SLUICE_TEST_DATA_DIR) + "/config/prices_test.yaml", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }();
  return text;
}

// Names models of the catalog's four provider hints, so a fuzzed catalog's
// rows are looked up, merged and priced.
constexpr std::string_view kSmallConfig = R"(providers:
  openai: {base_url: "https://api.openai.com/v1", api_key_env: OPENAI_API_KEY}
  anthropic: {kind: mock}
models:
  gpt-4o: {input: 2.5}
  claude-haiku-4.5: {}
agents:
  bot: {models: [gpt-4o, claude-haiku-4.5], usd_per_day: 1}
unknown_model_price: {input: 1, output: 2}
)";

std::string describe(const config::LoadResult& r) {
  if (r) return "loaded:\n" + config::summarize(*r) + "hash " + r->hash;
  return "failed:\n" + config::formatDiagnostics(r.error());
}

size_t lineCount(std::string_view text) {
  size_t lines = 1;  // a trailing line break opens one more, empty line
  for (const char c : text) lines += c == '\n';
  return lines;
}

void checkLoad(std::string_view yaml, std::string_view catalog, std::string_view what) {
  const config::LoadResult first = config::loadConfigString(yaml, "fuzz.yaml", catalog);
  const config::LoadResult second = config::loadConfigString(yaml, "fuzz.yaml", catalog);
  const std::string one = describe(first);
  FUZZ_CHECK(one == describe(second),
             std::string(what) + ": loading twice differs:\n" + one + "\n-----\n" + describe(second));
  if (first) {
    FUZZ_CHECK(first->source_path == "fuzz.yaml" && first->hash.size() == 64, std::string(what) + ": " + one);
    return;
  }

  const auto& diags = first.error();
  FUZZ_CHECK(!diags.empty(), std::string(what) + ": failed without a diagnostic");
  int last_line = 0;
  int last_column = 0;
  for (const config::Diagnostic& d : diags) {
    const std::string why = std::string(what) + ": " + printable(d.str()) + "\n     text: " + printable(yaml);
    FUZZ_CHECK(d.file == "fuzz.yaml" || d.file == "prices.yaml", "file name\n     " + why);
    FUZZ_CHECK(!d.message.empty() && d.message.find('\n') == std::string::npos &&
                   d.message.find('\r') == std::string::npos,
               "not one non-empty line\n     " + why);
    FUZZ_CHECK((d.line == 0 && d.column == 0) || (d.line >= 1 && d.column >= 1), "position\n     " + why);
    const size_t lines = lineCount(d.file == "fuzz.yaml" ? yaml : catalog);
    FUZZ_CHECK(static_cast<size_t>(d.line) <= lines, "line past the end of the text\n     " + why);
    // sortByPosition: file order (whole-file diagnostics first).
    FUZZ_CHECK(d.line > last_line || (d.line == last_line && d.column >= last_column),
               "diagnostics out of order\n     " + why);
    last_line = d.line;
    last_column = d.column;
  }
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.empty()) return 0;  // an empty catalog text means "the shipped one"
  checkLoad(input, testCatalog(), "as the configuration");
  checkLoad(kSmallConfig, input, "as the price catalog");
  return 0;
}
