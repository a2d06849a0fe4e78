#include "tokenizer/registry.h"

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>

namespace sluice::tokenizer {
namespace {

// SHA-256s: tiktoken_ext/openai_public.py (openai/tiktoken 0.9-0.12).
constexpr EncodingInfo kEncodings[] = {
    {"o200k_base", "o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
     Pattern::kO200k},
    {"cl100k_base", "cl100k_base.tiktoken", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
     Pattern::kCl100k},
};
constexpr size_t kCount = std::size(kEncodings);

struct Slot {
  std::once_flag once;
  std::unique_ptr<const Encoding> encoding;
  std::string error;
};
Slot g_slots[kCount];

}  // namespace

std::span<const EncodingInfo> knownEncodings() { return kEncodings; }

const EncodingInfo* findEncoding(std::string_view name) {
  for (const auto& e : kEncodings) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::string knownEncodingNames() {
  std::string out;
  for (const auto& e : kEncodings) {
    if (!out.empty()) out += ", ";
    out += e.name;
  }
  return out;
}

std::expected<std::string, std::string> findTokenizerDir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* env = std::getenv("SLUICE_DATA_DIR"); env != nullptr && *env != '\0') {
    const fs::path p = fs::path(env) / "tokenizers";
    if (fs::is_directory(p, ec)) return p.string();
    return std::unexpected("the tokenizer folder " + p.string() + " does not exist (SLUICE_DATA_DIR is set to '" + env +
                           "')");
  }
  std::vector<fs::path> tried;
  // Next to the binary first (an installed one: bin/../share/sluice), then
  // the source tree it was built from (a build tree's binary).
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    tried.push_back(fs::path(exe).parent_path() / ".." / "share" / "sluice" / "tokenizers");
    if (fs::is_directory(tried.back(), ec)) return tried.back().lexically_normal().string();
  }
#ifdef SLUICE_DATA_DIR
  tried.push_back(fs::path(SLUICE_DATA_DIR) / "tokenizers");
  if (fs::is_directory(tried.back(), ec)) return tried.back().string();
#endif
  std::string where;
  for (const auto& p : tried) where += (where.empty() ? "" : ", ") + p.lexically_normal().string();
  return std::unexpected("the tokenizer folder was not found (looked at " + (where.empty() ? "nothing" : where) +
                         "); set SLUICE_DATA_DIR to the folder holding tokenizers/");
}

std::expected<const Encoding*, std::string> sharedEncoding(std::string_view name) {
  const EncodingInfo* info = findEncoding(name);
  if (info == nullptr) {
    return std::unexpected("unknown encoding '" + std::string(name) + "' (known: " + knownEncodingNames() + ")");
  }
  Slot& slot = g_slots[static_cast<size_t>(info - kEncodings)];
  std::call_once(slot.once, [&] {
    auto dir = findTokenizerDir();
    if (!dir) {
      slot.error = dir.error();
      return;
    }
    auto e = Encoding::loadFile(info->name, *dir + "/" + std::string(info->file), info->sha256, info->pattern);
    if (!e) {
      slot.error = e.error();
      return;
    }
    slot.encoding = std::make_unique<const Encoding>(std::move(*e));
  });
  if (!slot.encoding) return std::unexpected(slot.error);
  return slot.encoding.get();
}

}  // namespace sluice::tokenizer
