// `sluice tokens`: exact token counts of a file or stdin under an OpenAI
// model's encoding, or of a chat request's prompt as the gateway bills it.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "config/catalog.h"
#include "tokenizer/chat.h"
#include "tokenizer/registry.h"

namespace sluice::cli {
namespace {

// The model's encoding from the price catalog (its `encoding:` field).
std::optional<std::string> encodingOfModel(const std::string& model) {
  auto path = config::findCatalogPath();
  if (!path) {
    fmt::print(stderr, "error: {}\n", path.error());
    return std::nullopt;
  }
  auto catalog = config::loadCatalogFile(*path);
  if (!catalog) {
    for (const auto& d : catalog.error()) fmt::print(stderr, "{}:{}:{}: {}\n", d.file, d.line, d.column, d.message);
    return std::nullopt;
  }
  const auto it = catalog->find(model);
  if (it == catalog->end()) {
    fmt::print(stderr, "error: model '{}' is not in the price catalog {}; pass --encoding ({})\n", model, *path,
               tokenizer::knownEncodingNames());
    return std::nullopt;
  }
  if (it->second.encoding.empty()) {
    fmt::print(stderr, "error: model '{}' has no published tokenizer (no encoding in {}); pass --encoding ({})\n",
               model, *path, tokenizer::knownEncodingNames());
    return std::nullopt;
  }
  return it->second.encoding;
}

}  // namespace

int tokensCommand(const std::string& model, const std::string& encoding, bool chat, const std::string& file) {
  if (!encoding.empty() && tokenizer::findEncoding(encoding) == nullptr) {
    fmt::print(stderr, "error: unknown encoding '{}' (known: {})\n", encoding, tokenizer::knownEncodingNames());
    return 2;
  }
  std::string input;
  if (file.empty() || file == "-") {
    input.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      fmt::print(stderr, "error: cannot open {}\n", file);
      return 1;
    }
    input.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::optional<tokenizer::ChatRequest> request;
  if (chat) {
    auto parsed = tokenizer::parseChatRequest(input);
    if (!parsed) {
      fmt::print(stderr, "error: {}\n", parsed.error());
      return 1;
    }
    request = std::move(*parsed);
  }
  std::string enc_name = encoding;
  if (enc_name.empty()) {
    // --model, else (with --chat) the request's own model.
    const std::string m = !model.empty() ? model : request ? request->model : "";
    if (m.empty()) {
      fmt::print(stderr, "error: name a --model or an --encoding ({})\n", tokenizer::knownEncodingNames());
      return 2;
    }
    auto e = encodingOfModel(m);
    if (!e) return 1;
    enc_name = *e;
  }
  auto enc = tokenizer::sharedEncoding(enc_name);
  if (!enc) {
    fmt::print(stderr, "error: {}\n", enc.error());
    return 1;
  }
  if (!request) {
    fmt::print("{}\n", (*enc)->count(input));
    return 0;
  }
  fmt::print("{}\n",
             tokenizer::countChatPrompt(**enc, tokenizer::framingFor(enc_name), request->messages, request->tools));
  if (request->uncounted_parts > 0) {
    fmt::print(stderr, "note: {} image, audio or file part(s) not counted\n", request->uncounted_parts);
  }
  return 0;
}

}  // namespace sluice::cli
