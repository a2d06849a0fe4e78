#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/ledger_common.h"
#include "store/import.h"

namespace sluice::cli {

int importCommand(const ImportOptions& o) {
  auto ctx = openLedgerContext(o.source, true);
  if (!ctx) return 1;
  auto prices = loadPrices(ctx->config);
  if (!prices) return 1;
  const store::PriceLookup price = [&](std::string_view model) -> std::optional<core::Price> {
    auto it = prices->find(std::string(model));
    if (it == prices->end()) return std::nullopt;
    return it->second;
  };
  const auto tier_of = [&](std::string_view agent) -> std::string {
    if (!ctx->config) return "";
    auto it = ctx->config->agents.find(std::string(agent));
    return it == ctx->config->agents.end() ? "" : it->second.tier;
  };
  int status = 0;
  for (const std::string& file : o.files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      fmt::print(stderr, "{}: cannot be read\n", file);
      status = 1;
      continue;
    }
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string content = buf.str();
    const store::ParsedAuditFile parsed = store::parseAuditFile(content, price);
    for (const auto& p : parsed.problems) fmt::print(stderr, "{}: {}\n", file, p.message);
    if (!parsed.problems.empty()) status = 1;
    auto counts = store::importRows(*ctx->db, parsed.rows, file, tier_of, o.dry_run);
    if (!counts) {
      fmt::print(stderr, "{}: {}\n", file, counts.error().message);
      status = 1;
      continue;
    }
    int64_t catalog = 0, unpriced = 0;
    for (const auto& r : parsed.rows) {
      catalog += r.cost_source == "catalog" ? 1 : 0;
      unpriced += r.cost_source == "unpriced" ? 1 : 0;
    }
    fmt::print(
        "{}: {} ({}), {} row(s) read, {} {}, {} already imported, {} bad; {} priced from the catalog, {} "
        "unpriced (no price for the model); cost added {}\n",
        file, parsed.format.empty() ? "empty" : parsed.format, o.dry_run ? "dry run" : "imported", parsed.rows.size(),
        counts->added, o.dry_run ? "would be added" : "added", counts->already, parsed.problems.size(), catalog,
        unpriced, usd(counts->added_cost_micro_usd));
  }
  return status;
}

}  // namespace sluice::cli
