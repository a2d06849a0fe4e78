#pragma once
/// @file
/// @brief Removing secrets from text that leaves the gateway.
///
/// A provider's error body may quote the key it was sent ("Incorrect API key
/// provided: sk-..."), and a misbehaving relay may echo request headers into
/// any answer. Everything Sluice relays from a provider passes through
/// redactSecrets() with every provider key configured.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace sluice::core {

/// What a secret is replaced with: plain ASCII with no quote or backslash,
/// so JSON and SSE text stay well-formed.
inline constexpr std::string_view kRedacted = "[redacted]";

/// Replaces every occurrence of each non-empty secret in `text` with
/// kRedacted. Returns the number of replacements. Cost when nothing matches:
/// one memmem() pass over `text` per secret.
size_t redactSecrets(std::string& text, std::span<const std::string> secrets);

}  // namespace sluice::core
