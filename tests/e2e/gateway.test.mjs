// Integration tests: real `sluice serve` in front of real `sluice mock-upstream`
// processes on loopback, driven over HTTP with fetch.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { MockUpstream, Gateway, chat, readSse, sleep } from './harness.mjs';

// A one-loop gateway config: provider "openai" at `base` (…/v1 added), one
// agent "a", the state in the test's directory.
const oneAgentConfig = (base, { usageLog = '${DIR}/usage.jsonl', agent = '{}' } = {}) => `
server: {listen: "127.0.0.1:0", usage_log: "${usageLog}", threads: 1}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${base}/v1"}
agents:
  a: ${agent}
`;

const PRICE = { 'gpt-4.1': [2.0, 8.0], 'gpt-4o-mini': [0.15, 0.6] };
const costMicros = (model, inTok, outTok) =>
  Math.ceil((inTok * PRICE[model][0] * 1e6 + outTok * PRICE[model][1] * 1e6) / 1e6);

describe('gateway basics', () => {
  let mock, gw, key, limitedKey, pipeKey, revokeKey;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 12 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", max_body_bytes: 65536, threads: 2}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1"}
agents:
  drafter: {max_tokens_per_call: 500, rpm: 1000}
  limited: {models: [gpt-4o-mini]}
  helper: {}
`, { keys: { d: { agent: 'drafter' }, l: { agent: 'limited' }, p: { pipeline: true, actsFor: ['drafter', 'helper'] }, h: { agent: 'helper' } } });
    key = gw.keys.d.key;
    limitedKey = gw.keys.l.key;
    pipeKey = gw.keys.p.key;
    revokeKey = gw.keys.h;
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('proxies a chat completion with the gateway headers and bills the provider usage', async () => {
    const res = await chat(gw, key, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 50 });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /application\/json/);
    for (const h of ['x-request-id', 'x-sluice-served-model', 'x-sluice-provider', 'x-sluice-config-version', 'server-timing', 'x-sluice-cost-usd', 'x-ratelimit-remaining-requests'])
      assert.ok(res.headers.get(h), `missing ${h}`);
    assert.equal(res.headers.get('x-sluice-served-model'), 'gpt-4.1');
    // The gateway's own time is measured, not read off one callback's cached clock.
    const timing = res.headers.get('server-timing').match(/^gateway;dur=([0-9.]+), upstream;dur=([0-9.]+)$/);
    assert.ok(timing, res.headers.get('server-timing'));
    assert.ok(Number(timing[1]) > 0 && Number(timing[2]) > 0, res.headers.get('server-timing'));
    const body = await res.json();
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.usage.completion_tokens, 12);
    const expected = costMicros('gpt-4.1', body.usage.prompt_tokens, body.usage.completion_tokens);
    assert.equal(res.headers.get('x-sluice-cost-usd'), (expected / 1e6).toFixed(6));
    const row = await gw.row(res.headers.get('x-request-id'));
    assert.ok(row);
    assert.equal(row.outcome, 'ok');
    assert.equal(row.usage_source, 'provider');
    assert.equal(row.cost_micro_usd, expected);
    assert.equal(row.agent, 'drafter');
    assert.ok(row.gateway_us > 0 && row.latency_us > row.gateway_us, JSON.stringify(row));
    assert.equal(row.input_tokens, body.usage.prompt_tokens);
  });

  it('injects the agent output cap when the client sends none', async () => {
    await mock.configure({ completion_tokens: 100000 });
    const res = await chat(gw, key, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'long answer please' }] });
    const body = await res.json();
    await mock.configure({ completion_tokens: 12 });
    assert.equal(res.status, 200);
    assert.equal(body.usage.completion_tokens, 500, 'max_tokens_per_call was injected upstream');
  });

  it('streams without include_usage: the usage chunk and usage:null keys are removed', async () => {
    const res = await chat(gw, key, { model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'stream it' }], max_tokens: 5 });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const events = await readSse(res);
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1);
    assert.ok(chunks.length >= 3);
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.ok(!('usage' in c), 'usage key leaked to a client that did not ask');
      assert.ok(c.choices.length > 0);
    }
    const row = await gw.row(res.headers.get('x-request-id'));
    assert.equal(row.usage_source, 'provider', 'usage was requested upstream');
    assert.equal(row.output_tokens, 5);
    assert.equal(row.stream, true);
  });

  it('a stream ends with its cost as an HTTP trailer, equal to the ledger row', async () => {
    // fetch() drops trailers; node's http module exposes them.
    const body = JSON.stringify({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'trailer' }], max_tokens: 6 });
    const { res, text } = await new Promise((resolve, reject) => {
      const req = http.request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ res, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(res.statusCode, 200);
    assert.ok(text.includes('data: [DONE]'));
    assert.equal(res.headers.trailer, 'x-sluice-cost-usd, server-timing');
    const row = await gw.row(res.headers['x-request-id']);
    assert.ok(row.cost_micro_usd > 0);
    assert.equal(res.trailers['x-sluice-cost-usd'], (row.cost_micro_usd / 1e6).toFixed(6));
    assert.match(res.trailers['server-timing'], /^gateway;dur=[0-9.]+, upstream;dur=[0-9.]+$/);
  });

  it('streams with include_usage: the usage chunk is forwarded', async () => {
    const res = await chat(gw, key, { model: 'gpt-4.1', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream it' }], max_tokens: 4 });
    const events = await readSse(res);
    const usageChunk = events.find((e) => e !== '[DONE]' && e.usage);
    assert.ok(usageChunk);
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage.completion_tokens, 4);
  });

  it('rejects bad keys with 401 invalid_api_key, never echoing the key', async () => {
    const none = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(none.status, 401);
    const bad = await chat(gw, 'sk-sluice-aaaaaaaaaaaa_' + 'b'.repeat(43), { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(bad.status, 401);
    const text = await bad.text();
    const err = JSON.parse(text).error;
    assert.equal(err.code, 'invalid_api_key');
    assert.ok(!text.includes('bbbbbbbb'));
  });

  it('stops accepting a revoked key within about a second', async () => {
    const ok = await chat(gw, revokeKey.key, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
    assert.equal(ok.status, 200);
    gw.revokeKey(revokeKey.id);
    await sleep(1600);
    const res = await chat(gw, revokeKey.key, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
    assert.equal(res.status, 401);
  });

  it('lets a pipeline key act only for its listed agents', async () => {
    const ok = await chat(gw, pipeKey, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 }, { 'x-sluice-agent': 'helper' });
    assert.equal(ok.status, 200);
    const no = await chat(gw, pipeKey, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }] }, { 'x-sluice-agent': 'limited' });
    assert.equal(no.status, 403);
    assert.equal((await no.json()).error.code, 'agent_not_allowed');
    const missing = await chat(gw, pipeKey, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(missing.status, 403);
  });

  it('answers request errors in OpenAI shape', async () => {
    const notAllowed = await chat(gw, limitedKey, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(notAllowed.status, 403);
    assert.equal((await notAllowed.json()).error.code, 'model_not_allowed');

    const tooMany = await chat(gw, key, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }], max_tokens: 501 });
    assert.equal(tooMany.status, 400);
    const e = (await tooMany.json()).error;
    assert.equal(e.code, 'max_tokens_exceeded');
    assert.equal(e.param, 'max_tokens');

    const malformed = await chat(gw, key, '{"model": "gpt-4.1", "messages": [');
    assert.equal(malformed.status, 400);
    const me = (await malformed.json()).error;
    assert.equal(me.type, 'invalid_request_error');

    const big = await chat(gw, key, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x'.repeat(70000) }] });
    assert.equal(big.status, 413);

    const unknownModel = await chat(gw, key, { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(unknownModel.status, 404);
    assert.equal((await unknownModel.json()).error.code, 'model_not_found');

    const nowhere = await fetch(`${gw.url}/v1/nowhere`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(nowhere.status, 404);
  });

  it('lists the models an agent may call', async () => {
    const all = await (await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).json();
    assert.equal(all.object, 'list');
    assert.ok(all.data.some((m) => m.id === 'gpt-4.1'));
    const limited = await (await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${limitedKey}` } })).json();
    assert.deepEqual(limited.data.map((m) => m.id), ['gpt-4o-mini']);
    const one = await fetch(`${gw.url}/v1/models/gpt-4o-mini`, { headers: { authorization: `Bearer ${limitedKey}` } });
    assert.equal((await one.json()).id, 'gpt-4o-mini');
    const hidden = await fetch(`${gw.url}/v1/models/gpt-4.1`, { headers: { authorization: `Bearer ${limitedKey}` } });
    assert.equal(hidden.status, 404);
  });

  it('proxies embeddings and bills their input tokens', async () => {
    const res = await fetch(`${gw.url}/v1/embeddings`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: ['hello world', 'second'], encoding_format: 'float' }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.data.length, 2);
    const row = await gw.row(res.headers.get('x-request-id'));
    assert.equal(row.input_tokens, body.usage.prompt_tokens);
    assert.equal(row.output_tokens, 0);
  });

  it('writes one usage row per request, rejected ones included', async () => {
    const a = await chat(gw, 'nope', { model: 'gpt-4.1', messages: [] });
    const b = await chat(gw, key, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });
    const ra = await gw.row(a.headers.get('x-request-id'));
    const rb = await gw.row(b.headers.get('x-request-id'));
    assert.equal(ra.outcome, 'rejected_auth');
    assert.equal(ra.http_status, 401);
    assert.equal(rb.outcome, 'ok');
    const rows = await gw.usage();
    assert.equal(new Set(rows.map((r) => r.request_id)).size, rows.length, 'one row per request id');
    assert.ok(!JSON.stringify(rows).includes('sk-sluice-'), 'no key material in the ledger');
  });
});

describe('budgets under concurrency', () => {
  let mock, gw, key;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 64 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 2}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1", max_connections: 256}
budgets:
  on_short_budget: reject
agents:
  looper: {usd_per_day: 0.01}
`, { keys: { k: { agent: 'looper' } } });
    key = gw.keys.k.key;
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('200 concurrent requests never spend past the budget, and the ledger equals the provider bill', async () => {
    const reqs = Array.from({ length: 200 }, (_, i) =>
      chat(gw, key, { model: 'gpt-4.1', messages: [{ role: 'user', content: `request ${i}` }], max_tokens: 100 })
        .then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json() })));
    const results = await Promise.all(reqs);
    const ok = results.filter((r) => r.status === 200);
    const rejected = results.filter((r) => r.status === 429);
    assert.equal(ok.length + rejected.length, 200);
    assert.ok(ok.length > 0, 'some requests fit the budget');
    assert.ok(rejected.length > 0, 'the budget ran out');
    for (const r of rejected) {
      assert.equal(r.body.error.code, 'insufficient_quota');
      assert.equal(r.body.error.type, 'insufficient_quota');
      assert.equal(r.headers.get('x-should-retry'), 'false');
    }
    const bill = await mock.bill();
    const m = bill.models['gpt-4.1'];
    assert.equal(m.requests, ok.length, 'the provider served exactly the admitted requests');
    const providerCost = costMicros('gpt-4.1', m.prompt_tokens, 0) + Math.ceil(m.completion_tokens * 8);
    assert.ok(providerCost <= 10000, `provider bill ${providerCost} µUSD exceeds the 10000 µUSD budget`);
    const rows = await gw.usage({ minCount: 200 });
    const ledgerIn = rows.reduce((s, r) => s + r.input_tokens, 0);
    const ledgerOut = rows.reduce((s, r) => s + r.output_tokens, 0);
    assert.equal(ledgerIn, m.prompt_tokens);
    assert.equal(ledgerOut, m.completion_tokens);
    const ledgerCost = rows.reduce((s, r) => s + r.cost_micro_usd, 0);
    assert.ok(ledgerCost <= 10000);
  });
});

describe('resilience', () => {
  let good, flaky, staller, gw, key;
  before(async () => {
    good = await MockUpstream.start({ completion_tokens: 8 });
    flaky = await MockUpstream.start({ completion_tokens: 8, error_rate_500: 0.3, seed: 7 });
    staller = await MockUpstream.start({ completion_tokens: 8, stall_rate: 1, stall_after_chunks: 1 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 1}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  good: {base_url: "${good.url}/v1"}
  flaky: {base_url: "${flaky.url}/v1"}
  stall: {base_url: "${staller.url}/v1", first_byte_timeout_ms: 400}
  dead: {base_url: "http://127.0.0.1:1/v1", connect_timeout_ms: 500}
models:
  m-good: {provider: good, input: 1, output: 2}
  m-flaky: {provider: flaky, input: 1, output: 2}
  m-stall: {provider: stall, input: 1, output: 2}
  m-dead: {provider: dead, input: 1, output: 2}
profiles:
  main:
    fallbacks: {m-dead: [m-good], m-stall: [m-good]}
active_profile: main
resilience:
  retries: {max: 6, base_ms: 1, max_ms: 5}
  breaker: {failures: 50, open_ms: 1000}
agents:
  a: {}
`, { keys: { k: { agent: 'a' } } });
    key = gw.keys.k.key;
  });
  after(async () => { await gw?.stop(); good?.stop(); flaky?.stop(); staller?.stop(); });

  it('falls back when a provider refuses connections', async () => {
    const res = await chat(gw, key, { model: 'm-dead', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-sluice-served-model'), 'm-good');
    assert.ok(Number(res.headers.get('x-sluice-attempts')) >= 2);
    const row = await gw.row(res.headers.get('x-request-id'));
    assert.equal(row.requested_model, 'm-dead');
    assert.equal(row.served_model, 'm-good');
    assert.ok(row.attempts.some((a) => a.model === 'm-dead' && a.error === 'connect'));
  });

  it('retries 5xx answers and every attempt lands on the ledger', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      chat(gw, key, { model: 'm-flaky', messages: [{ role: 'user', content: `q${i}` }], max_tokens: 5 })));
    for (const r of results) {
      if (r.status !== 200) console.log(JSON.stringify((await gw.row(r.headers.get('x-request-id'))).attempts.map((a) => a.error)));
      assert.equal(r.status, 200);
    }
    const bill = await flaky.bill();
    const rows = (await gw.usage({ minCount: 21 })).filter((r) => r.requested_model === 'm-flaky');
    const attempts = rows.reduce((s, r) => s + r.attempts.filter((a) => a.provider === 'flaky').length, 0);
    assert.equal(attempts, bill.requests_total, 'one ledger attempt per request the provider saw');
    assert.ok(attempts > 20, 'some attempts were retried');
    assert.equal(rows.reduce((s, r) => s + r.output_tokens, 0), bill.models['m-flaky'].completion_tokens);
  });

  it('falls back when a stream stalls before its first token', async () => {
    const res = await chat(gw, key, { model: 'm-stall', stream: true, messages: [{ role: 'user', content: 'x' }], max_tokens: 5 });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-sluice-served-model'), 'm-good');
    const events = await readSse(res);
    assert.equal(events.at(-1), '[DONE]');
    const row = await gw.row(res.headers.get('x-request-id'));
    assert.ok(row.attempts.some((a) => a.model === 'm-stall' && a.error === 'first_token_timeout'));
  });
});

describe('stream exit paths are billed', () => {
  let mock, gw, key;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 400, tokens_per_second: 200 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 1}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1"}
agents:
  a: {}
`, { keys: { k: { agent: 'a' } } });
    key = gw.keys.k.key;
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('a client that leaves mid-stream cancels upstream and is billed (counted exactly)', async () => {
    const ctl = new AbortController();
    const res = await chat(gw, key, { model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'x' }], max_tokens: 400 }, {});
    const reader = res.body.getReader();
    await reader.read();
    await sleep(100);
    await reader.cancel();
    ctl.abort();
    const id = res.headers.get('x-request-id');
    let row;
    for (let i = 0; i < 60 && !row; i++) {
      row = (await gw.usage()).find((r) => r.request_id === id);
      if (!row) await sleep(100);
    }
    assert.ok(row, 'usage row written');
    assert.equal(row.outcome, 'client_abort');
    assert.equal(row.usage_source, 'counted', 'gpt-4.1 has a known tokenizer: Sluice counts exactly');
    assert.ok(row.output_tokens > 0 && row.output_tokens < 400);
    assert.ok(row.cost_micro_usd > 0);
    await sleep(300);
    const bill = await mock.bill();
    const served = bill.models['gpt-4.1'].completion_tokens;
    assert.ok(served < 400, 'the upstream stream was cancelled');
    assert.ok(Math.abs(row.output_tokens - served) <= Math.max(1, served * 0.02), `ledger ${row.output_tokens} vs provider ${served}`);
  });

  it('a mid-stream reset ends the client stream with an error event and is billed', async () => {
    await mock.reset();
    await mock.configure({ completion_tokens: 50, tokens_per_second: 0, reset_mid_stream_rate: 1, reset_after_chunks: 6 });
    const res = await chat(gw, key, { model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'x' }], max_tokens: 50 });
    assert.equal(res.status, 200);
    const events = await readSse(res);
    const last = events.at(-1);
    assert.ok(last.error, 'stream ends with an error event');
    assert.equal(typeof last.error.message, 'string');
    const row = await gw.row(res.headers.get('x-request-id'));
    assert.equal(row.outcome, 'upstream_error');
    assert.equal(row.usage_source, 'counted');
    assert.equal(row.output_tokens, (await mock.bill()).models['gpt-4.1'].completion_tokens);
  });

  it('a provider that ignores max_tokens is cut at the reservation', async () => {
    await mock.reset();
    await mock.configure({ completion_tokens: 400, ignore_max_tokens: true, reset_mid_stream_rate: 0, tokens_per_second: 0 });
    const res = await chat(gw, key, { model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'x' }], max_tokens: 20 });
    const events = await readSse(res);
    assert.equal(events.at(-1), '[DONE]');
    assert.ok(events.at(-2).error, 'an error event precedes [DONE]');
    const text = events.filter((e) => e !== '[DONE]' && e.choices).map((e) => e.choices[0]?.delta?.content ?? '').join('');
    assert.ok(text.split(' ').filter(Boolean).length <= 24, `client got ${text.split(' ').length} words for a cap of 20`);
    const row = await gw.row(res.headers.get('x-request-id'));
    assert.equal(row.finish_reason, 'length');
    assert.ok(row.cost_micro_usd > 0);
  });
});

describe('runs, rate limits, breakers and legacy completions', () => {
  let mock, dead, gw;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 6 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 1}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1"}
  dead: {base_url: "http://127.0.0.1:1/v1", connect_timeout_ms: 300}
models:
  m-dead: {provider: dead, input: 1, output: 1}
resilience:
  retries: {max: 0, base_ms: 1, max_ms: 1}
  breaker: {failures: 2, open_ms: 60000}
budgets:
  run: {calls: 3, usd: 1}
agents:
  a: {}
  tpm: {tpm: 300}
`, { keys: { a: { agent: 'a' }, t: { agent: 'tpm' } } });
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('caps the calls of one pipeline run (X-Sluice-Run)', async () => {
    const call = () => chat(gw, gw.keys.a.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 }, { 'x-sluice-run': 'run-42' });
    for (let i = 0; i < 3; i++) assert.equal((await call()).status, 200);
    const fourth = await call();
    assert.equal(fourth.status, 429);
    assert.equal(fourth.headers.get('x-should-retry'), 'false');
    const err = (await fourth.json()).error;
    assert.equal(err.code, 'insufficient_quota');
    assert.match(err.message, /run-42/);
    const other = await chat(gw, gw.keys.a.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 }, { 'x-sluice-run': 'run-43' });
    assert.equal(other.status, 200, 'another run has its own budget');
  });

  it('answers a TPM limit with OpenAI rate-limit headers', async () => {
    // TPM counts prompt estimate + max_tokens while a call runs (as OpenAI
    // does); the second call arrives while the first is still upstream.
    await mock.configure({ latency_ms: 400 });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 200 };
    const firstP = chat(gw, gw.keys.t.key, body);
    await sleep(100);
    const second = await chat(gw, gw.keys.t.key, body);
    const first = await firstP;
    await mock.configure({ latency_ms: 0 });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-limit-tokens'), '300');
    assert.equal(second.status, 429);
    const err = (await second.json()).error;
    assert.equal(err.type, 'tokens');
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.ok(Number(second.headers.get('retry-after')) >= 1);
    assert.ok(Number(second.headers.get('retry-after-ms')) > 0);
    assert.ok(second.headers.get('x-ratelimit-reset-tokens'));
    assert.equal(second.headers.get('x-should-retry'), null);
  });

  it('opens the breaker after consecutive failures and stops calling the provider', async () => {
    const call = () => chat(gw, gw.keys.a.key, { model: 'm-dead', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 });
    const r1 = await call(); const r2 = await call();
    assert.equal(r1.status, 502);
    assert.equal(r2.status, 502);
    const r3 = await call();
    assert.equal(r3.status, 503, 'breaker open: upstream_unavailable without a call');
    const row = await gw.row(r3.headers.get('x-request-id'));
    assert.deepEqual(row.attempts.map((a) => a.error), ['breaker_open']);
    assert.equal(row.outcome, 'upstream_error');
  });

  it('proxies legacy completions with the default cap of 16', async () => {
    const res = await fetch(`${gw.url}/v1/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${gw.keys.a.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Once upon a time' }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.object, 'text_completion');
    const row = await gw.row(res.headers.get('x-request-id'));
    assert.equal(row.endpoint, 'completions');
    assert.equal(row.output_tokens, body.usage.completion_tokens);
  });
});

describe('graceful shutdown', () => {
  it('finishes in-flight requests, records them, refuses new ones, then exits 0', async () => {
    const mock = await MockUpstream.start({ completion_tokens: 4, latency_ms: 800 });
    const gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 1}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1"}
agents:
  a: {}
`, { keys: { k: { agent: 'a' } } });
    try {
      const inflight = chat(gw, gw.keys.k.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 4 });
      await sleep(250);
      const exited = new Promise((r) => gw.child.on('exit', (code) => r(code)));
      gw.child.kill('SIGTERM');
      await sleep(100);
      const late = await chat(gw, gw.keys.k.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'y' }] }).catch(() => null);
      if (late) assert.equal(late.status, 503, 'new requests during the drain get a retryable 503');
      const res = await inflight;
      assert.equal(res.status, 200, 'the in-flight request completed');
      const id = res.headers.get('x-request-id');
      assert.equal(await exited, 0);
      const row = (await gw.usage()).find((r) => r.request_id === id);
      assert.ok(row, 'its usage row was flushed before exit');
      assert.equal(row.outcome, 'ok');
    } finally {
      await gw.stop();
      mock.stop();
    }
  });
});

describe('config reload', () => {
  it('applies a valid file on SIGHUP and keeps running on an invalid one', async () => {
    const mock = await MockUpstream.start({ completion_tokens: 3 });
    const yaml = (agents) => `
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 1}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1"}
agents:
${agents}
`;
    const gw = await Gateway.start(yaml('  a: {}'), { keys: { k: { agent: 'a' } } });
    const { writeFileSync } = await import('node:fs');
    const call = () => chat(gw, gw.keys.k.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
    try {
      const before = (await call()).headers.get('x-sluice-config-version');
      writeFileSync(gw.config, yaml('  a: {models: [gpt-4.1]}').replaceAll('${DIR}', gw.dir));
      gw.child.kill('SIGHUP');
      let res;
      for (let i = 0; i < 50; i++) {
        res = await call();
        if (res.headers.get('x-sluice-config-version') !== before) break;
        await sleep(50);
      }
      assert.notEqual(res.headers.get('x-sluice-config-version'), before);
      assert.equal(res.status, 403, 'the new allow-list applies');
      writeFileSync(gw.config, 'agents: {a: {rpm: -5}}\n');
      gw.child.kill('SIGHUP');
      await sleep(300);
      const still = await call();
      assert.equal(still.status, 403, 'the running config stayed');
      assert.match(gw.stderr, /refused/);
    } finally {
      await gw.stop();
      mock.stop();
    }
  });
});

describe('a usage log that cannot be written', () => {
  it('keeps serving, says so loudly, turns /readyz to 503, and reports the loss at exit', async () => {
    const mock = await MockUpstream.start({ completion_tokens: 3 });
    const gw = await Gateway.start(oneAgentConfig(mock.url, { usageLog: '/dev/full' }), { keys: { k: { agent: 'a' } } });
    try {
      assert.equal((await fetch(`${gw.url}/readyz`)).status, 200);
      const res = await chat(gw, gw.keys.k.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
      assert.equal(res.status, 200, 'budgets are enforced in memory: the call is served');
      let ready;
      for (let i = 0; i < 100; i++) {
        ready = await fetch(`${gw.url}/readyz`);
        if (ready.status === 503) break;
        await sleep(20);
      }
      assert.equal(ready.status, 503);
      assert.deepEqual(await ready.json(), { status: 'usage_log_failing' });
      assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
      assert.match(gw.stderr, /usage log \/dev\/full: write failed: No space left on device/);
      assert.equal(await gw.terminate(), 0);
      assert.match(gw.stderr, /1 record\(s\) could not be written before exit/);
    } finally {
      await gw.stop();
      mock.stop();
    }
  });
});

describe('usage log rotation', () => {
  it('SIGUSR1 reopens the usage log by its path after logrotate renamed it', async () => {
    const { renameSync, existsSync } = await import('node:fs');
    const mock = await MockUpstream.start({ completion_tokens: 3 });
    const gw = await Gateway.start(oneAgentConfig(mock.url), { keys: { k: { agent: 'a' } } });
    const call = async () => (await chat(gw, gw.keys.k.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 })).headers.get('x-request-id');
    try {
      const first = await call();
      assert.ok(await gw.row(first));
      renameSync(gw.usageLog, `${gw.usageLog}.1`);
      gw.child.kill('SIGUSR1');
      for (let i = 0; i < 100 && !/reopened the usage log/.test(gw.stderr); i++) await sleep(10);
      assert.match(gw.stderr, /reopened the usage log/);
      const second = await call();
      const row = await gw.row(second);
      assert.ok(row, 'the new file holds the next record');
      assert.ok(existsSync(`${gw.usageLog}.1`));
      assert.equal(row.request_id, second);
    } finally {
      await gw.stop();
      mock.stop();
    }
  });
});

describe('a reload that moves a provider', () => {
  it('lets calls on the old pool finish, then closes its connections', async () => {
    // The old provider: counts its connections, and holds the second request
    // until the test releases it (a call in flight across the reload).
    let opened = 0;
    let closed = 0;
    let requests = 0;
    let release;
    const held = new Promise((r) => { release = r; });
    const answer = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'chatcmpl-old', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'from the old provider' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
      }));
    };
    const old = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (++requests === 2) held.then(() => answer(res));
        else answer(res);
      });
    });
    old.keepAliveTimeout = 120000;  // only the gateway closes connections here
    old.on('connection', (sock) => { ++opened; sock.on('close', () => { ++closed; }); });
    await new Promise((r) => old.listen(0, '127.0.0.1', r));
    const mock = await MockUpstream.start({ completion_tokens: 3 });
    const gw = await Gateway.start(oneAgentConfig(`http://127.0.0.1:${old.address().port}`), { keys: { k: { agent: 'a' } } });
    const call = () => chat(gw, gw.keys.k.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 4 });
    try {
      const first = await call();
      assert.equal(first.status, 200);
      const version = first.headers.get('x-sluice-config-version');
      const inFlight = call();  // held by the old provider
      for (let i = 0; i < 100 && requests < 2; i++) await sleep(10);
      assert.equal(requests, 2);

      const { writeFileSync } = await import('node:fs');
      writeFileSync(gw.config, oneAgentConfig(mock.url).replaceAll('${DIR}', gw.dir));
      gw.child.kill('SIGHUP');
      let res;
      for (let i = 0; i < 100; i++) {
        res = await call();
        if (res.headers.get('x-sluice-config-version') !== version) break;
        await sleep(20);
      }
      assert.notEqual(res.headers.get('x-sluice-config-version'), version, 'the reload applied');
      assert.equal((await res.json()).choices[0].message.content === 'from the old provider', false);

      // Idle connections of the old pool close at once; the held call's stays.
      for (let i = 0; i < 100 && closed < opened - 1; i++) await sleep(20);
      assert.equal(closed, opened - 1, 'only the connection of the call in flight is open');

      release();
      const done = await inFlight;
      assert.equal(done.status, 200);
      assert.equal((await done.json()).choices[0].message.content, 'from the old provider', 'the reload did not cut it');
      for (let i = 0; i < 100 && closed < opened; i++) await sleep(20);
      assert.equal(closed, opened, 'its connection closed after it, not kept in a pool nobody uses');
    } finally {
      release();
      await gw.stop();
      mock.stop();
      old.closeAllConnections();
      old.close();
    }
  });
});

describe('provider credential errors', () => {
  it('never relays a provider 401 (it may quote the provider key) and falls back', async () => {
    const { createServer } = await import('node:http');
    const seenAuth = [];
    const refusing = createServer((req, res) => {
      seenAuth.push(req.headers.authorization);
      req.resume();
      req.on('end', () => {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'Incorrect API key provided: sk-proj-LEAKME1234', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }));
      });
    });
    await new Promise((r) => refusing.listen(0, '127.0.0.1', r));
    const mock = await MockUpstream.start({ completion_tokens: 3 });
    const gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 1}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  refusing: {base_url: "http://127.0.0.1:${refusing.address().port}/v1", api_key_env: SOME_PROVIDER_KEY}
  openai: {base_url: "${mock.url}/v1"}
models:
  m-alone: {provider: refusing, input: 1, output: 1}
  m-backed: {provider: refusing, input: 1, output: 1}
profiles:
  main: {fallbacks: {m-backed: [gpt-4o-mini]}}
active_profile: main
agents:
  a: {}
`, { keys: { k: { agent: 'a' } }, env: { SOME_PROVIDER_KEY: 'sk-proj-LEAKME1234' } });
    try {
      const alone = await chat(gw, gw.keys.k.key, { model: 'm-alone', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
      const text = await alone.text();
      assert.equal(alone.status, 502);
      assert.ok(!text.includes('LEAKME'), text);
      assert.equal(alone.headers.get('x-sluice-attempts'), '1', 'no retry with credentials that were refused');
      const backed = await chat(gw, gw.keys.k.key, { model: 'm-backed', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
      assert.equal(backed.status, 200);
      assert.equal(backed.headers.get('x-sluice-served-model'), 'gpt-4o-mini');
      const rows = await gw.usage({ minCount: 2 });
      assert.ok(!JSON.stringify(rows).includes('LEAKME'));
      assert.ok(!gw.stderr.includes('LEAKME'));
      assert.ok(seenAuth.length >= 2);
      for (const a of seenAuth) assert.equal(a, 'Bearer sk-proj-LEAKME1234', 'the provider key is added server-side, never the client key');
    } finally {
      await gw.stop();
      mock.stop();
      refusing.close();
    }
  });
});

describe('restarts', () => {
  it('keep what the day already spent (budget counters persist)', async () => {
    const mock = await MockUpstream.start({ completion_tokens: 3 });
    const gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 1}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1"}
agents:
  a: {calls_per_day: 3}
`, { keys: { k: { agent: 'a' } } });
    const call = () => chat(gw, gw.keys.k.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
    try {
      assert.equal((await call()).status, 200);
      assert.equal((await call()).status, 200);
      await gw.restart();
      assert.equal((await call()).status, 200);
      const fourth = await call();
      assert.equal(fourth.status, 429, 'the restart did not grant the day again');
      assert.equal((await fourth.json()).error.code, 'insufficient_quota');
    } finally {
      await gw.stop();
      mock.stop();
    }
  });
});
