#pragma once
// A compiled config for driving one stage directly (no gateway, no loop):
// the config text, a budget engine on a manual clock that owns its scopes,
// and the compiled config the stages read.

#include <gtest/gtest.h>

#include <memory>
#include <string_view>

#include "config/loader.h"
#include "core/budget.h"
#include "core/clock.h"
#include "gateway/compiled_config.h"

namespace sluice::gateway::testing {

struct StageFixture {
  explicit StageFixture(std::string_view yaml, core::BudgetEngine::Options options = {}) {
    auto cfg = config::loadConfigString(yaml, "stage.yaml");
    EXPECT_TRUE(cfg) << (cfg ? "" : cfg.error().front().str());
    if (!cfg) return;
    auto calendar = core::Calendar::create(cfg->budgets.time_zone);
    EXPECT_TRUE(calendar);
    budgets = std::make_unique<core::BudgetEngine>(clock, std::move(*calendar), options);
    auto compiled = compileConfig(std::make_shared<const config::Config>(std::move(*cfg)), *budgets,
                                  [](const std::string&) { return std::optional<std::string>("sk-test"); });
    EXPECT_TRUE(compiled) << (compiled ? "" : compiled.error().message);
    if (compiled) config = std::move(*compiled);
  }
  [[nodiscard]] bool ok() const { return config != nullptr; }
  [[nodiscard]] const AgentRuntime& agent(std::string_view name) const {
    const AgentRuntime* a = config->agent(name);
    EXPECT_NE(a, nullptr) << name;
    return *a;
  }

  core::ManualClock clock;
  std::unique_ptr<core::BudgetEngine> budgets;
  std::shared_ptr<const CompiledConfig> config;
};

}  // namespace sluice::gateway::testing
