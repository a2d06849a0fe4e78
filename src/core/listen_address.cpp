#include "core/listen_address.h"

#include <algorithm>

namespace sluice::core {

std::optional<ListenAddress> parseListenAddress(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5) return std::nullopt;
  int p = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + (c - '0');
  }
  if (p > 65535) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const bool clean = std::none_of(host.begin(), host.end(),
                                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == '/'; });
  if (!clean) return std::nullopt;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return std::nullopt;
  return ListenAddress{std::string(host), static_cast<uint16_t>(p)};
}

}  // namespace sluice::core
