#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace sluice::cli {

int run(int argc, char** argv) {
  CLI::App app{"Sluice: an LLM cost-control gateway for OpenAI-compatible providers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice 0.1.0");

  std::string config_path = "sluice.yaml";
  auto add_config = [&](CLI::App* sub) {
    sub->add_option("-c,--config", config_path, "configuration file (YAML)")->capture_default_str();
  };

  auto* check = app.add_subcommand("check", "validate a configuration file and print a summary");
  add_config(check);
  check->callback([&] { throw CLI::RuntimeError(checkCommand(config_path)); });

  auto* serve = app.add_subcommand("serve", "run the gateway");
  add_config(serve);
  serve->callback([&] { throw CLI::RuntimeError(serveCommand(config_path)); });

  auto* keys = app.add_subcommand("keys", "manage virtual keys");
  keys->require_subcommand(1);
  std::string agent;
  bool pipeline = false;
  bool json = false;
  std::vector<std::string> acts_for;
  auto* create = keys->add_subcommand("create", "create a key for an agent; prints the key once");
  add_config(create);
  create->add_option("--agent", agent, "agent the key acts as (for pipeline keys: the default agent)");
  create->add_flag("--pipeline", pipeline, "a pipeline key: names its agent per request in X-Sluice-Agent");
  create->add_option("--acts-for", acts_for, "agents a pipeline key may act for (comma-separated)")->delimiter(',');
  create->add_flag("--json", json, "print JSON");
  create->callback([&] { throw CLI::RuntimeError(keysCreateCommand(config_path, agent, pipeline, acts_for, json)); });
  auto* list = keys->add_subcommand("list", "list keys (ids, agents, state; never secrets)");
  add_config(list);
  list->add_flag("--json", json, "print JSON");
  list->callback([&] { throw CLI::RuntimeError(keysListCommand(config_path, json)); });
  std::string key_id;
  auto* revoke = keys->add_subcommand("revoke",
                                      "revoke a key by id; running gateways stop accepting it within a second");
  add_config(revoke);
  revoke->add_option("id", key_id, "key id (as shown by keys list)")->required();
  revoke->callback([&] { throw CLI::RuntimeError(keysRevokeCommand(config_path, key_id)); });

  std::string mock_host = "127.0.0.1";
  int mock_port = 8081;
  int mock_threads = 1;
  std::vector<std::string> knobs;
  auto* mock = app.add_subcommand("mock-upstream",
                                  "run an offline OpenAI-compatible provider for tests and benchmarks");
  mock->add_option("--host", mock_host, "address to bind")->capture_default_str();
  mock->add_option("--port", mock_port, "port (0 = pick a free one and print it)")->capture_default_str();
  mock->add_option("--threads", mock_threads, "event loops")->capture_default_str();
  mock->add_option("--set", knobs, "behaviour knob KEY=VALUE (repeatable), e.g. ttft_ms=50 error_rate_500=0.1");
  mock->callback([&] { throw CLI::RuntimeError(mockUpstreamCommand(mock_host, mock_port, mock_threads, knobs)); });

  std::string tokens_model, tokens_encoding, tokens_file;
  bool tokens_chat = false;
  auto* tokens = app.add_subcommand("tokens", "count tokens exactly with an OpenAI model's tokenizer");
  tokens->add_option("--model", tokens_model, "model whose encoding to use (the price catalog's encoding field)");
  tokens->add_option("--encoding", tokens_encoding, "encoding to use: o200k_base or cl100k_base");
  tokens->add_flag("--chat", tokens_chat,
                   "the input is a chat completion request (JSON): print its prompt tokens as OpenAI bills them "
                   "(the request's model picks the encoding when neither --model nor --encoding is given)");
  tokens->add_option("file", tokens_file, "file to count (default or -: standard input)");
  tokens->callback(
      [&] { throw CLI::RuntimeError(tokensCommand(tokens_model, tokens_encoding, tokens_chat, tokens_file)); });

  // The ledger commands: --ledger or --config, and the report's filters.
  LedgerSource ledger_source;
  FilterOptions filter;
  auto add_source = [&](CLI::App* sub) {
    sub->add_option("--ledger", ledger_source.ledger, "the ledger, sqlite:PATH (default: the config's storage.ledger)");
    sub->add_option("-c,--config", ledger_source.config_path,
                    "configuration file (YAML): its storage.ledger, budgets.time_zone and model prices")
        ->capture_default_str();
  };
  auto add_filters = [&](CLI::App* sub) {
    sub->add_option(
        "--since", filter.since,
        "from this time on: YYYY-MM-DD (local midnight), an ISO 8601 time, or a span back from now (7d, 12h)");
    sub->add_option("--until", filter.until, "before this time (same forms as --since)");
    sub->add_option("--agent", filter.agents, "only these agents (repeatable, comma-separated)")->delimiter(',');
    sub->add_option("--model", filter.models, "only requests that asked for or were served by these models")
        ->delimiter(',');
    sub->add_option("--run", filter.runs, "only these runs (X-Sluice-Run)")->delimiter(',');
  };
  auto given = [&](CLI::App* sub) { ledger_source.config_given = sub->count("--config") > 0; };

  ReportOptions report_options;
  auto* report = app.add_subcommand("report", "totals and groups of the ledger: tokens, cost, latency, outcomes");
  add_source(report);
  add_filters(report);
  report
      ->add_option("--by", report_options.by,
                   "group by agent, model, served-model, provider, tier, day, run (combinable: agent,model)")
      ->delimiter(',');
  report->add_option("--format", report_options.format, "table, json or csv")->capture_default_str();
  report->callback([&] {
    given(report);
    report_options.source = ledger_source;
    report_options.filter = filter;
    throw CLI::RuntimeError(reportCommand(report_options));
  });

  ImportOptions import_options;
  auto* import = app.add_subcommand(
      "import", "bring audit logs into the ledger: Sluice's JSON lines, generic JSON lines, {summary, entries} files");
  add_source(import);
  import->add_option("files", import_options.files, "files to import")->required();
  import->add_flag("--dry-run", import_options.dry_run, "show what would be added; change nothing");
  import->callback([&] {
    given(import);
  import_options.source = ledger_source;
  throw CLI::RuntimeError(importCommand(import_options));
});

ExportOptions export_options;
auto* exp = app.add_subcommand("export", "the ledger's requests, one line each (streamed), with the report's filters");
add_source(exp);
add_filters(exp);
exp->add_option("--format", export_options.format,
                "jsonl (usage records with their attempts, as the usage log writes them) or csv (one row per request)")
    ->capture_default_str();
exp->callback([&] {
  given(exp);
  export_options.source = ledger_source;
  export_options.filter = filter;
  throw CLI::RuntimeError(exportCommand(export_options));
});

RoiOptions roi_options;
auto* roi = app.add_subcommand("roi", "replay the ledger with models mapped to others: projected cost and saving");
add_source(roi);
add_filters(roi);
roi->add_option("--map", roi_options.maps, "FROM=TO: price FROM's traffic at TO's price (repeatable)")->required();
roi->add_flag("--explain", roi_options.explain, "show the arithmetic of each figure");
roi->callback([&] {
  given(roi);
  roi_options.source = ledger_source;
  roi_options.filter = filter;
  throw CLI::RuntimeError(roiCommand(roi_options));
});

try {
  app.parse(argc, argv);
} catch (const CLI::RuntimeError& e) {
  return e.get_exit_code();
} catch (const CLI::ParseError& e) {
  return app.exit(e);
}
return 0;
}  // namespace sluice::cli

}  // namespace sluice::cli
