// The budget on paths that once spent past a limit: a restart inside a
// minute window, and (with the hardening suite) long calls and retries.
// Prices are 1 and 2 µUSD per input and output token; the provider is
// `sluice mock-upstream`, whose bill is the truth the limits are held to.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, MockUpstream, chat } from './harness.mjs';

describe('a minute window across a graceful restart', () => {
  let mock, gw;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 1400 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl"}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  p: {base_url: "${mock.url}/v1"}
models:
  m: {provider: p, input: 1, output: 2}
budgets:
  on_short_budget: reject
agents:
  a: {usd_per_minute: 0.003}
`, { keys: { a: { agent: 'a' } } });
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('keeps what was spent in the minute: the call after the restart is refused', async () => {
    const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1400 };
    const first = await chat(gw, gw.keys.a.key, body);
    assert.equal(first.status, 200, await first.text());
    const again = await chat(gw, gw.keys.a.key, body);
    assert.equal(again.status, 429, 'the minute is spent');
    await again.text();
    await gw.restart();
    const after = await chat(gw, gw.keys.a.key, body);
    const text = await after.text();
    assert.equal(after.status, 429, `served again within the minute after a restart: ${text}`);
    const bill = await mock.bill();
    assert.equal(bill.requests_total, 1, JSON.stringify(bill));
  });
});
