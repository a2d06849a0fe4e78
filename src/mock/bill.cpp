#include "mock/bill.h"

#include "mock/json_out.h"

namespace sluice::mock {

ModelBill& Bill::modelLocked(std::string_view model) {
  auto it = data_.models.find(model);
  if (it != data_.models.end()) return it->second;
  if (data_.models.size() >= kMaxModels) model = kOverflowModel;
  return data_.models.try_emplace(std::string(model)).first->second;
}

void Bill::recordReceived() {
  std::lock_guard lock(mu_);
  ++data_.requests_total;
}

void Bill::recordServed(std::string_view model, uint64_t prompt_tokens, uint64_t completion_tokens) {
  std::lock_guard lock(mu_);
  ModelBill& m = modelLocked(model);
  m.requests += 1;
  m.prompt_tokens += prompt_tokens;
  m.completion_tokens += completion_tokens;
  data_.totals.requests += 1;
  data_.totals.prompt_tokens += prompt_tokens;
  data_.totals.completion_tokens += completion_tokens;
}

void Bill::addCompletion(std::string_view model, uint64_t completion_tokens) {
  if (completion_tokens == 0) return;
  std::lock_guard lock(mu_);
  modelLocked(model).completion_tokens += completion_tokens;
  data_.totals.completion_tokens += completion_tokens;
}

void Bill::recordError(int status, std::string_view model) {
  std::lock_guard lock(mu_);
  ++data_.errors[status];
  ++data_.totals.errors;
  if (!model.empty()) ++modelLocked(model).errors;
}

void Bill::reset() {
  std::lock_guard lock(mu_);
  data_ = BillSnapshot{};
}

BillSnapshot Bill::snapshot() const {
  std::lock_guard lock(mu_);
  return data_;
}

namespace {
void appendModelBill(std::string& out, const ModelBill& m) {
  out += "{\"requests\":";
  json::appendUint(out, m.requests);
  out += ",\"prompt_tokens\":";
  json::appendUint(out, m.prompt_tokens);
  out += ",\"completion_tokens\":";
  json::appendUint(out, m.completion_tokens);
  out += ",\"total_tokens\":";
  json::appendUint(out, m.totalTokens());
  out += ",\"errors\":";
  json::appendUint(out, m.errors);
  out.push_back('}');
}
}  // namespace

std::string Bill::toJson() const {
  BillSnapshot s = snapshot();
  std::string out = "{\"models\":{";
  bool first = true;
  for (const auto& [name, m] : s.models) {
    if (!first) out.push_back(',');
    first = false;
    json::appendString(out, name);
    out.push_back(':');
    appendModelBill(out, m);
  }
  out += "},\"totals\":";
  appendModelBill(out, s.totals);
  out += ",\"requests_total\":";
  json::appendUint(out, s.requests_total);
  out += ",\"errors\":{";
  first = true;
  for (const auto& [status, n] : s.errors) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    json::appendInt(out, status);
    out += "\":";
    json::appendUint(out, n);
  }
  out += "}}";
  return out;
}

}  // namespace sluice::mock
