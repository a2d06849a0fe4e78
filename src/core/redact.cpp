#include "core/redact.h"

#include <cstring>

namespace sluice::core {

size_t redactSecrets(std::string& text, std::span<const std::string> secrets) {
  size_t count = 0;
  for (const std::string& secret : secrets) {
    if (secret.empty() || secret.size() > text.size()) continue;
    size_t from = 0;
    while (from + secret.size() <= text.size()) {
      const void* hit = memmem(text.data() + from, text.size() - from, secret.data(), secret.size());
      if (hit == nullptr) break;
      const size_t at = static_cast<size_t>(static_cast<const char*>(hit) - text.data());
      text.replace(at, secret.size(), kRedacted);
      from = at + kRedacted.size();
      ++count;
    }
  }
  return count;
}

}  // namespace sluice::core
