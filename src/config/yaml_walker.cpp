#include "config/yaml_walker.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>

namespace sluice::config {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// How a value that has the wrong type looks to the user.
std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return fmt::format("'{}'", n.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return "nothing";
  }
  return "nothing";
}

std::string childPath(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

bool validName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f;  // printable, no whitespace
  });
}

// A diagnostic is one line: control characters that messages quote from the
// file (a key "a\nb", yaml-cpp's "unknown escape character: <it>") are shown
// escaped, so they cannot break the line or forge another diagnostic.
std::string oneLine(std::string message) {
  auto is_control = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; };
  if (std::none_of(message.begin(), message.end(), is_control)) return message;
  std::string out;
  for (const char c : message) {
    if (!is_control(c)) {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

}  // namespace

size_t editDistance(std::string_view a, std::string_view b) {
  // Full matrix: names are short and this runs only on errors.
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::optional<std::string> closestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  const size_t limit = std::min<size_t>(3, std::max<size_t>(1, word.size() / 3));
  std::optional<std::string> best;
  size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const size_t dist = editDistance(word, c);
    if (dist < best_distance) {
      best_distance = dist;
      best = c;
    }
  }
  return best;
}

std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  if (auto m = closestMatch(word, candidates)) return fmt::format("; did you mean '{}'?", *m);
  return "";
}

std::string joinOr(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += (i + 1 == names.size()) ? " or " : ", ";
    out += names[i];
  }
  return out;
}

std::string formatDecimal6(int64_t micros) {
  std::string s = fmt::format("{}.{:06}", micros / 1'000'000, micros % 1'000'000);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::expected<std::string, std::string> readSmallFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(fmt::format("cannot open the file: {}", std::strerror(errno)));
  std::string bytes;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<size_t>(in.gcount()));
    if (bytes.size() > max_bytes) {
      return std::unexpected(fmt::format("the file is larger than {} bytes", max_bytes));
    }
  }
  if (in.bad()) return std::unexpected("cannot read the file");
  return bytes;
}

void sortByPosition(std::vector<Diagnostic>& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
}

YAML::Mark Entry::mark() const {
  if (!value.IsDefined() || value.IsNull()) return key_mark;
  return value.Mark();
}

std::string Entry::what() const { return path.empty() ? "the configuration" : path; }

Walker::Walker(std::string file, std::vector<Diagnostic>* out)
    : file_(std::move(file)), out_(out), first_(out->size()) {}

void Walker::error(const YAML::Mark& mark, std::string message) {
  // yaml-cpp marks are 0-based; a null mark (-1) means "no position".
  const int line = mark.line < 0 ? 0 : mark.line + 1;
  const int column = mark.line < 0 ? 0 : mark.column + 1;
  out_->push_back(Diagnostic{file_, line, column, oneLine(std::move(message))});
}

std::optional<YAML::Node> Walker::parse(std::string_view text) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& ex) {
    // Startup only: yaml-cpp reports syntax errors by exception.
    error(ex.mark, fmt::format("the file is not valid YAML: {}", ex.msg));
    return std::nullopt;
  }
}

bool Walker::readFields(const Entry& at, const std::vector<Field>& fields, std::string_view hint) {
  if (!at.value.IsDefined() || at.value.IsNull()) return true;
  if (!at.value.IsMap()) {
    error(at, fmt::format("{} must be a mapping of keys, got {}", at.what(), describe(at.value)));
    return false;
  }
  std::set<std::string> seen;
  for (const auto& kv : at.value) {
    const YAML::Node k = kv.first;
    if (!k.IsScalar()) {
      error(k.Mark(), fmt::format("keys in {} must be plain names", at.what()));
      continue;
    }
    const std::string& key = k.Scalar();
    if (!seen.insert(key).second) {
      error(k.Mark(), fmt::format("key '{}' appears twice in {}", key, at.what()));
      continue;
    }
    const Field* field = nullptr;
    for (const auto& f : fields) {
      if (f.key == key) field = &f;
    }
    if (field == nullptr) {
      std::vector<std::string> names;
      for (const auto& f : fields) names.emplace_back(f.key);
      std::string msg = fmt::format("unknown key '{}' in {}", key, at.what());
      if (auto m = closestMatch(key, names)) {
        msg += fmt::format("; did you mean '{}'?", *m);
      } else if (!hint.empty()) {
        msg += fmt::format("; {}", hint);
      } else {
        msg += fmt::format(" (expected {})", joinOr(names));
      }
      error(k.Mark(), std::move(msg));
      continue;
    }
    field->read(Entry{key, childPath(at.path, key), k.Mark(), kv.second});
  }
  return true;
}

bool Walker::readNamed(const Entry& at, std::string_view what, const std::function<void(const Entry&)>& read) {
  if (!at.value.IsDefined() || at.value.IsNull()) return true;
  if (!at.value.IsMap()) {
    error(at, fmt::format("{} must be a mapping of names, got {}", at.what(), describe(at.value)));
    return false;
  }
  std::set<std::string> seen;
  for (const auto& kv : at.value) {
    const YAML::Node k = kv.first;
    if (!k.IsScalar() || !validName(k.Scalar())) {
      error(k.Mark(), fmt::format("{} {} in {} must be a non-empty word without spaces", what, describe(k), at.what()));
      continue;
    }
    const std::string& key = k.Scalar();
    if (!seen.insert(key).second) {
      error(k.Mark(), fmt::format("{} '{}' appears twice in {}", what, key, at.what()));
      continue;
    }
    read(Entry{key, childPath(at.path, key), k.Mark(), kv.second});
  }
  return true;
}

std::optional<std::string> Walker::string(const Entry& e) {
  if (!e.value.IsScalar()) {
    error(e, fmt::format("{} must be a text value, got {}", e.what(), describe(e.value)));
    return std::nullopt;
  }
  return e.value.Scalar();
}

std::optional<int64_t> Walker::integer(const Entry& e, int64_t min, int64_t max) {
  if (!e.value.IsScalar()) {
    error(e, fmt::format("{} must be a whole number, got {}", e.what(), describe(e.value)));
    return std::nullopt;
  }
  const std::string& s = e.value.Scalar();
  int64_t v = 0;
  std::string_view digits = s;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  const bool all_digits = !digits.empty() && ptr == digits.data() + digits.size();
  if (ec == std::errc::result_out_of_range) {
    error(e, fmt::format("{} is too large, got {}", e.what(), s));
    return std::nullopt;
  }
  if (ec != std::errc() || !all_digits) {
    error(e, fmt::format("{} must be a whole number, got '{}'", e.what(), s));
    return std::nullopt;
  }
  if (v < min || v > max) {
    if (min == 1 && v < 1) {
      error(e, fmt::format("{} must be greater than zero, got {}", e.what(), v));
    } else if (min == 0 && v < 0) {
      error(e, fmt::format("{} must not be negative, got {}", e.what(), v));
    } else if (max == INT64_MAX) {
      error(e, fmt::format("{} must be at least {}, got {}", e.what(), min, v));
    } else {
      error(e, fmt::format("{} must be between {} and {}, got {}", e.what(), min, max, v));
    }
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Walker::boolean(const Entry& e) {
  if (e.value.IsScalar()) {
    std::string s = e.value.Scalar();
    std::transform(s.begin(), s.end(), s.begin(), lower);
    if (s == "true") return true;
    if (s == "false") return false;
  }
  error(e, fmt::format("{} must be true or false, got {}", e.what(), describe(e.value)));
  return std::nullopt;
}

std::optional<core::MicroUsd> Walker::usd(const Entry& e, bool positive) {
  if (!e.value.IsScalar()) {
    error(e, fmt::format("{} must be a USD amount like 0.28, got {}", e.what(), describe(e.value)));
    return std::nullopt;
  }
  const std::string& s = e.value.Scalar();
  if (!s.empty() && s.front() == '-') {
    if (core::parseUsd(std::string_view(s).substr(1))) {
      error(e, fmt::format("{} must {}, got {}", e.what(), positive ? "be greater than zero" : "not be negative", s));
      return std::nullopt;
    }
  }
  // core::parseUsd reads the decimal text exactly: no float ever sees money.
  const auto v = core::parseUsd(s);
  if (!v) {
    error(e, fmt::format("{} must be a USD amount with at most 6 decimals, like 0.28, got '{}'", e.what(), s));
    return std::nullopt;
  }
  if (positive && *v == 0) {
    error(e, fmt::format("{} must be greater than zero, got {}", e.what(), s));
    return std::nullopt;
  }
  return v;
}

std::optional<int64_t> Walker::fractionPpm(const Entry& e) {
  // One millionth = one micro-unit, so the exact decimal parser for USD
  // doubles as an exact parser for fractions.
  const auto bad = [&] {
    error(e, fmt::format("{} must be a decimal above 0 and at most 1, like 0.25, got {}", e.what(), describe(e.value)));
    return std::nullopt;
  };
  if (!e.value.IsScalar()) return bad();
  const auto v = core::parseUsd(e.value.Scalar());
  if (!v || *v <= 0 || *v > 1'000'000) return bad();
  return v;
}

std::optional<std::vector<Walker::Item>> Walker::stringList(const Entry& e) {
  if (!e.value.IsDefined() || e.value.IsNull()) return std::vector<Item>{};
  if (!e.value.IsSequence()) {
    error(e, fmt::format("{} must be a list like [a, b], got {}", e.what(), describe(e.value)));
    return std::nullopt;
  }
  std::vector<Item> items;
  bool ok = true;
  for (const auto& n : e.value) {
    if (!n.IsScalar()) {
      error(n.Mark().line < 0 ? e.mark() : n.Mark(),
            fmt::format("each entry of {} must be a name, got {}", e.what(), describe(n)));
      ok = false;
      continue;
    }
    items.push_back(Item{n.Scalar(), n.Mark()});
  }
  if (!ok) return std::nullopt;
  return items;
}

}  // namespace sluice::config
