// The budget on paths that once spent past a limit: a restart inside a
// minute window, and (with the hardening suite) long calls and retries.
// Prices are 1 and 2 µUSD per input and output token; the provider is
// `sluice mock-upstream`, whose bill is the truth the limits are held to.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, MockUpstream, chat, sleep } from './harness.mjs';

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

describe('tokens in flight when a client leaves a fast stream', () => {
  let mock, gw;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 20000 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl"}
providers:
  p: {base_url: "${mock.url}/v1"}
models:
  m: {provider: p, input: 1, output: 2}
agents:
  a: {}
`, { keys: { a: { agent: 'a' } } });
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('counts what the provider had sent before the cut: the record is never under the bill', async () => {
    // Bytes the provider had sent (and billed) but Sluice had not read when
    // the client left were dropped with the connection: records were 16-32 %
    // under the bill on fast streams. The upstream client now drains its
    // receive buffer first (tests/net: DrainThenCancel*, which fail without
    // it). Here Sluice bills its own output estimate, which errs high by
    // about 2x on the mock's text and so hides the loss; with exact counts
    // for cut streams (the token-counting work) the margin goes and this
    // check bites.
    const calls = 16;
    await Promise.all(Array.from({ length: calls }, async (_, i) => {
      const ctl = new AbortController();
      const res = await chat(gw, gw.keys.a.key,
        { model: 'm', stream: true, messages: [{ role: 'user', content: `story ${i}` }], max_tokens: 20000 },
        {}, ctl.signal);
      assert.equal(res.status, 200);
      const reader = res.body.getReader();
      await reader.read();
      ctl.abort();
      await reader.closed.catch(() => {});
    }));
    const rows = await gw.usage({ minCount: calls });
    assert.equal(rows.length, calls);
    await sleep(300);  // the provider notices the cuts
    const bill = await mock.bill();
    const recorded = rows.reduce((s, r) => s + r.output_tokens, 0);
    const billed = bill.totals.completion_tokens;
    assert.ok(rows.every((r) => r.outcome === 'client_abort'), JSON.stringify(rows.map((r) => r.outcome)));
    assert.ok(billed < calls * 20000, `the provider stopped on the cuts (billed ${billed})`);
    assert.ok(recorded >= billed, `recorded ${recorded} output tokens, the provider billed ${billed}`);
  });
});
