#include "gateway/models_endpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/json_text.h"

namespace sluice::gateway {

std::optional<Refusal> modelsBody(const CompiledConfig& config, const config::AgentConfig& agent, std::string_view id,
                                  int64_t created_unix, std::string& body) {
  const CompiledConfig& snap = config;
  const int64_t created = created_unix;
  const auto& cfg = *snap.config;
  std::vector<std::string_view> names;
  auto allowed = [&](std::string_view m) {
    return agent.models.empty() || std::find(agent.models.begin(), agent.models.end(), m) != agent.models.end();
  };
  for (const auto& [name, m] : cfg.models) {
    if (!m.provider.empty() && allowed(name)) names.push_back(name);
  }
  // Substitution sources are callable names too (the gateway serves them).
  if (const auto* p = snap.routing->activeProfile()) {
    for (const auto& [from, rule] : p->substitutions) {
      if (allowed(from) && std::find(names.begin(), names.end(), from) == names.end()) names.push_back(from);
    }
  }
  auto one = [&](std::string& out, std::string_view name) {
    const auto* m = snap.model(name);
    out += R"({"id":)";
    core::appendJsonString(out, name);
    out += fmt::format(R"(,"object":"model","created":{},"owned_by":)", created);
    core::appendJsonString(out, m && !m->provider.empty() ? std::string_view(m->provider) : std::string_view("sluice"));
    out += '}';
  };
  body.clear();
  if (!id.empty()) {
    if (std::find(names.begin(), names.end(), id) == names.end()) {
      return Refusal{core::ErrorCode::kModelNotFound,
                     fmt::format("The model `{}` does not exist or you do not have access to it.", id.substr(0, 256)),
                     store::Outcome::kRejectedInvalid, "model"};
    }
    one(body, id);
    return std::nullopt;
  }
  std::sort(names.begin(), names.end());
  body = R"({"object":"list","data":[)";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) body += ',';
    one(body, names[i]);
  }
  body += "]}";
  return std::nullopt;
}

}  // namespace sluice::gateway
