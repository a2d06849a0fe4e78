#pragma once
/// @file
/// @brief GET /v1/models and /v1/models/{id}: the models an agent may call
/// (its allow-list, or every served model), substitution sources included,
/// in OpenAI's list shape. Pure.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/compiled_config.h"
#include "gateway/refusal.h"

namespace sluice::gateway {

/// The body for `id` ("" lists every model), or a 404 model_not_found.
/// `created_unix` is the `created` each entry says.
[[nodiscard]] std::optional<Refusal> modelsBody(const CompiledConfig& config, const config::AgentConfig& agent,
                                                std::string_view id, int64_t created_unix, std::string& body);

}  // namespace sluice::gateway
