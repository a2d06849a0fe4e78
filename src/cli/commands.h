#pragma once
/// @file
/// @brief One function per subcommand (called by cli.cpp after parsing).

#include <string>
#include <vector>

#include "cli/ledger_common.h"

namespace sluice::cli {

int checkCommand(const std::string& config_path);
int serveCommand(const std::string& config_path);
int keysCreateCommand(const std::string& config_path, const std::string& agent, bool pipeline,
                      const std::vector<std::string>& acts_for, bool json);
int keysListCommand(const std::string& config_path, bool json);
int keysRevokeCommand(const std::string& config_path, const std::string& id);
/// `sluice tokens`: counts `file` ("" or "-": stdin) under `encoding`, or
/// the encoding the price catalog gives `model`; `chat`: the input is a chat
/// completion request and the prompt is counted as OpenAI bills it.
int tokensCommand(const std::string& model, const std::string& encoding, bool chat, const std::string& file);
int mockUpstreamCommand(const std::string& host, int port, int threads, const std::vector<std::string>& knobs);

/// `sluice report`: totals and groups of the ledger's requests.
struct ReportOptions {
  LedgerSource source;
  FilterOptions filter;
  std::vector<std::string> by;
  std::string format = "table";  ///< table | json | csv
};
int reportCommand(const ReportOptions& options);

/// `sluice import FILE...`: audit logs into the ledger (store/import.h).
struct ImportOptions {
  LedgerSource source;
  std::vector<std::string> files;
  bool dry_run = false;
};
int importCommand(const ImportOptions& options);

/// `sluice export`: the matching requests, one line each, streamed.
struct ExportOptions {
  LedgerSource source;
  FilterOptions filter;
  std::string format = "jsonl";  ///< jsonl | csv
};
int exportCommand(const ExportOptions& options);

/// `sluice roi`: the ledger replayed with models mapped to others.
struct RoiOptions {
  LedgerSource source;
  FilterOptions filter;           ///< since defaults to 30d
  std::vector<std::string> maps;  ///< FROM=TO
  bool explain = false;
};
int roiCommand(const RoiOptions& options);

}  // namespace sluice::cli
