// The differential test's C++ side: counts every sample of the corpus that
// tools/tokenizers/corpus.mjs wrote (with tiktoken's counts and ids) and
// requires equality, for each shipped encoding:
//   - count() (the hand-written pre-tokenizer) equals tiktoken's count on
//     every sample;
//   - on the samples the reference gives ids for, encode() equals them, and
//     so does encodeWithPcre2() (the published pattern through PCRE2).
// Prints the first mismatches (sample, source, text, both id lists) and a
// summary; exits 1 on any mismatch, 2 when the corpus cannot be read.
//
//   sluice_tokenizer_diff CORPUS_DIR   (tools/tokenizers/differential.sh)
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/registry.h"

namespace {

using sluice::tokenizer::Encoding;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string escaped(std::string_view s, size_t limit = 300) {
  std::string out;
  for (const unsigned char c : s.substr(0, limit)) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "...";
  return out;
}

std::string join(const std::vector<uint32_t>& ids) {
  std::string out;
  for (const uint32_t id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
  return out;
}

struct Sample {
  size_t offset, length;
  std::string source;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::string corpus = readFile(dir + "/corpus.bin");
  std::vector<Sample> samples;
  {
    std::istringstream index(readFile(dir + "/index.tsv"));
    std::string line;
    while (std::getline(index, line)) {
      Sample s;
      std::istringstream fields(line);
      fields >> s.offset >> s.length >> s.source;
      if (!fields || s.offset + s.length > corpus.size()) {
        std::fprintf(stderr, "bad index line: %s\n", line.c_str());
        return 2;
      }
      samples.push_back(std::move(s));
    }
  }
  if (samples.empty()) {
    std::fprintf(stderr, "no samples in %s (run tools/tokenizers/corpus.mjs)\n", dir.c_str());
    return 2;
  }
  int failures = 0;
  for (const auto& info : sluice::tokenizer::knownEncodings()) {
    auto loaded = sluice::tokenizer::sharedEncoding(info.name);
    if (!loaded) {
      std::fprintf(stderr, "%s\n", loaded.error().c_str());
      return 2;
    }
    const Encoding& enc = **loaded;
    std::istringstream refs(readFile(dir + "/" + std::string(info.name) + ".ref"));
    size_t mismatched = 0, id_checked = 0, tokens = 0;
    double seconds = 0;
    std::vector<uint32_t> got, want, via_pcre2;
    std::string line;
    for (size_t i = 0; i < samples.size(); ++i) {
      if (!std::getline(refs, line)) {
        std::fprintf(stderr, "%s.ref has fewer lines than samples\n", std::string(info.name).c_str());
        return 2;
      }
      std::istringstream fields(line);
      size_t want_count = 0;
      fields >> want_count;
      want.clear();
      for (uint32_t id; fields >> id;) want.push_back(id);
      const std::string_view text(corpus.data() + samples[i].offset, samples[i].length);
      const auto t0 = std::chrono::steady_clock::now();
      const size_t count = enc.count(text);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      tokens += count;
      bool bad = count != want_count;
      got.clear();
      via_pcre2.clear();
      if (!want.empty() || want_count == 0) {
        ++id_checked;
        enc.encode(text, got);
        auto r = enc.encodeWithPcre2(text, via_pcre2);
        bad = bad || got != want || !r || via_pcre2 != want;
      }
      if (!bad) continue;
      if (++mismatched <= 10) {
        std::printf("MISMATCH %s sample %zu (%s, %zu bytes): count %zu, tiktoken %zu\n  text: %s\n",
                    std::string(info.name).c_str(), i, samples[i].source.c_str(), text.size(), count, want_count,
                    escaped(text).c_str());
        if (!want.empty()) {
          std::printf("  ids:      %s\n  pcre2:    %s\n  tiktoken: %s\n", escaped(join(got), 400).c_str(),
                      escaped(join(via_pcre2), 400).c_str(), escaped(join(want), 400).c_str());
        }
      }
    }
    std::printf(
        "%s: %zu samples, %zu bytes, %zu tokens; ids compared on %zu samples; %zu mismatched; "
        "count() %.1f MB/s\n",
        std::string(info.name).c_str(), samples.size(), corpus.size(), tokens, id_checked, mismatched,
        static_cast<double>(corpus.size()) / 1e6 / seconds);
    if (mismatched > 0) ++failures;
  }
  return failures == 0 ? 0 : 1;
}
