#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/ledger_common.h"
#include "cli/table.h"
#include "store/report.h"

namespace sluice::cli {
namespace {

nlohmann::ordered_json value(const store::SqliteStatement& s, int col) {
  switch (s.type(col)) {
    case SQLITE_INTEGER: return s.int64(col);
    case SQLITE_FLOAT: return s.real(col);
    case SQLITE_NULL: return nullptr;
    default: return std::string(s.view(col));
  }
}

}  // namespace

int exportCommand(const ExportOptions& o) {
  if (o.format != "jsonl" && o.format != "csv") {
    fmt::print(stderr, "error: --format {}: expected jsonl or csv\n", o.format);
    return 2;
  }
  auto ctx = openLedgerContext(o.source, false, /*mmap=*/false);
  if (!ctx) return 1;
  auto filter = filterOf(o.filter, ctx->calendar, nowUnixMs());
  if (!filter) return 2;
  auto attempts = store::prepareAttemptsOf(*ctx->db);
  if (!attempts) {
    fmt::print(stderr, "error: {}\n", attempts.error().message);
    return 1;
  }
  std::vector<std::string> names;
  std::vector<std::string> attempt_names;
  int id_col = 0;
  std::string line;
  std::optional<core::Error> failed;
  auto ok = store::forEachRequest(
      *ctx->db, *filter,
      [&](const store::SqliteStatement& s) {
        for (int c = 0; c < s.columns(); ++c) {
          names.emplace_back(s.name(c));
          if (names.back() == "id") id_col = c;
        }
        for (int c = 2; c < attempts->columns(); ++c) attempt_names.emplace_back(attempts->name(c));
        if (o.format == "csv") fmt::print("{}\n", csvLine(names));
      },
      [&](const store::SqliteStatement& s) {
        line.clear();
        if (o.format == "csv") {
          for (int c = 0; c < s.columns(); ++c) {
            if (c) line += ',';
            if (s.type(c) != SQLITE_NULL) line += csvField(s.view(c));
          }
        } else {
          // The usage record's JSON line (what the mirror writes, so
          // `sluice import` reads it back), plus the ledger's own columns.
          nlohmann::ordered_json j;
          for (int c = 0; c < s.columns(); ++c) {
            j[names[static_cast<size_t>(c)]] = value(s, c);
          }
          nlohmann::ordered_json list = nlohmann::ordered_json::array();
          attempts->bind(1, s.int64(id_col));
          while (true) {
            auto row = attempts->step();
            if (!row) {
              failed = row.error();
              break;
            }
            if (!*row) break;
            nlohmann::ordered_json a;
            for (int c = 2; c < attempts->columns(); ++c)
              a[attempt_names[static_cast<size_t>(c - 2)]] = value(*attempts, c);
            list.push_back(std::move(a));
          }
          attempts->reset();
          j["attempts"] = std::move(list);
          j["stream"] = j.value("stream", 0) != 0;
          line = j.dump();
        }
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), stdout);
      });
  if (!ok) {
    fmt::print(stderr, "error: {}\n", ok.error().message);
    return 1;
  }
  if (failed) {
    fmt::print(stderr, "error: {}\n", failed->message);
    return 1;
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace sluice::cli
