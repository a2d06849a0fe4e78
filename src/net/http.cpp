// Asio-free helpers of the network edge.

#include "net/http.h"

#include "net/error_body.h"

namespace sluice::net {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

void appendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

std::string_view findHeader(const Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}

namespace detail {

std::string errorBody(std::string_view message, std::string_view type, std::string_view code) {
  std::string out;
  out.reserve(96 + message.size());
  out += R"({"error":{"message":)";
  appendJsonString(out, message);
  out += R"(,"type":)";
  appendJsonString(out, type);
  out += R"(,"param":null,"code":)";
  if (code.empty()) {
    out += "null";
  } else {
    appendJsonString(out, code);
  }
  out += "}}";
  return out;
}

}  // namespace detail

}  // namespace sluice::net
