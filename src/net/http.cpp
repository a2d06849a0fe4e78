// Asio-free helpers of the network edge.

#include "net/http.h"

#include "net/error_body.h"

#include "core/json_text.h"

#include <ostream>

namespace sluice::net {

bool iequalsAscii(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::ostream& operator<<(std::ostream& os, const HeaderName& name) { return os << name.view(); }

std::string_view findHeader(const Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (iequalsAscii(h.name, name)) return h.value;
  }
  return {};
}

namespace detail {

std::string errorBody(std::string_view message, std::string_view type, std::string_view code) {
  std::string out;
  out.reserve(96 + message.size());
  out += R"({"error":{"message":)";
  core::appendJsonString(out, message);
  out += R"(,"type":)";
  core::appendJsonString(out, type);
  out += R"(,"param":null,"code":)";
  if (code.empty()) {
    out += "null";
  } else {
    core::appendJsonString(out, code);
  }
  out += "}}";
  return out;
}

}  // namespace detail

}  // namespace sluice::net
