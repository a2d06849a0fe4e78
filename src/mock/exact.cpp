#include "mock/exact.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/catalog.h"
#include "tokenizer/registry.h"

namespace sluice::mock {
namespace {

/// One slot per known encoding, filled at its first use.
struct EncodingSlot {
  std::once_flag once;
  std::unique_ptr<const ExactCounter> counter;  // null when it could not be loaded
};

struct Resolver {
  std::map<std::string, size_t, std::less<>> model_encoding;  // model -> index into slots
  std::vector<EncodingSlot> slots;
};

// Built once; after that only the slots' once_flag/counter change.
Resolver& resolver() {
  static Resolver r = [] {
    Resolver out;
    const auto known = tokenizer::knownEncodings();
    out.slots = std::vector<EncodingSlot>(known.size());
    auto path = config::findCatalogPath();
    if (!path) {
      spdlog::warn("mock provider: counting tokens as bytes / 4 for every model: {}", path.error());
      return out;
    }
    auto catalog = config::loadCatalogFile(*path);
    if (!catalog) {
      spdlog::warn("mock provider: counting tokens as bytes / 4 for every model: the price catalog {} does not load",
                   *path);
      return out;
    }
    for (const auto& [model, entry] : *catalog) {
      if (entry.encoding.empty()) continue;
      const tokenizer::EncodingInfo* info = tokenizer::findEncoding(entry.encoding);
      if (info == nullptr) continue;  // the catalog loader already refuses unknown encodings
      out.model_encoding.emplace(model, static_cast<size_t>(info - known.data()));
    }
    return out;
  }();
  return r;
}

const ExactCounter* counterOfSlot(size_t index) {
  EncodingSlot& slot = resolver().slots[index];
  std::call_once(slot.once, [&] {
    const tokenizer::EncodingInfo& info = tokenizer::knownEncodings()[index];
    auto enc = tokenizer::sharedEncoding(info.name);
    if (!enc) {
      spdlog::warn("mock provider: counting {} models as bytes / 4: {}", info.name, enc.error());
      return;
    }
    auto counter = std::make_unique<const ExactCounter>(**enc, tokenizer::framingFor(info.name));
    if (!counter->canFillExactly()) {
      spdlog::warn("mock provider: counting {} models as bytes / 4: no one-token filler word", info.name);
      return;
    }
    slot.counter = std::move(counter);
  });
  return slot.counter.get();
}

}  // namespace

ExactCounter::ExactCounter(const tokenizer::Encoding& encoding, tokenizer::ChatFraming framing)
    : encoding_(&encoding), framing_(framing) {
  std::string form;
  bool fill[4] = {false, false, false, false};  // by capital*2 + space
  for (size_t w = 0; w < kWords.size(); ++w) {
    for (int k = 0; k < 8; ++k) {
      const bool capital = (k & 4) != 0;
      const bool space = (k & 2) != 0;
      const bool dot = (k & 1) != 0;
      form.clear();
      if (space) form.push_back(' ');
      form += kWords[w];
      if (capital) form[space ? 1 : 0] = static_cast<char>(form[space ? 1 : 0] - 'a' + 'A');
      if (dot) form.push_back('.');
      const size_t n = encoding.count(form);
      costs_[w * 8 + static_cast<size_t>(k)] = static_cast<uint8_t>(std::min<size_t>(n, 255));
      if (!dot && n == 1) fill[(capital ? 2 : 0) + (space ? 1 : 0)] = true;
    }
  }
  can_fill_ = fill[0] && fill[1] && fill[2] && fill[3];
}

uint64_t ExactCounter::countCached(std::string_view text) const {
  struct Entry {
    const ExactCounter* owner = nullptr;
    std::string text;
    uint64_t tokens = 0;
  };
  thread_local std::array<Entry, 4> entries;
  thread_local size_t next = 0;
  for (const Entry& e : entries) {
    if (e.owner == this && e.text == text) return e.tokens;
  }
  const uint64_t tokens = encoding_->count(text);
  if (text.size() <= kCacheMaxBytes) {
    Entry& e = entries[next];
    next = (next + 1) % entries.size();
    e.owner = this;
    e.text.assign(text);
    e.tokens = tokens;
  }
  return tokens;
}

const ExactCounter* exactCounterFor(std::string_view model) {
  const Resolver& r = resolver();
  const auto it = r.model_encoding.find(model);
  if (it == r.model_encoding.end()) return nullptr;
  return counterOfSlot(it->second);
}

void warmExactCounting() {
  const Resolver& r = resolver();
  std::vector<bool> used(r.slots.size(), false);
  for (const auto& [model, index] : r.model_encoding) used[index] = true;
  for (size_t i = 0; i < used.size(); ++i) {
    if (used[i]) (void)counterOfSlot(i);
  }
}

}  // namespace sluice::mock
