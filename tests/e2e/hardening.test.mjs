// Regression tests for holes a hostile provider (or a long call) found in the
// request path: usage reports beyond what the request allows, statuses no
// provider API uses, provider keys quoted back, a budget refusal between
// attempts, and a reservation that expired while its stream still ran.
// The provider is a scripted raw-TCP server: each test says what it answers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Gateway, MockUpstream, chat, readSse, sleep } from './harness.mjs';

const PROVIDER_SECRET = 'sk-provider-HARDENING-secret-0123456789abcdef';

// A provider whose every answer comes from `script.answer(req)`: bytes to
// write, then the connection is closed (each answer says `connection: close`,
// so each call gets a fresh connection and scripts stay simple).
async function scriptedProvider(script) {
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      let body = {};
      try { body = JSON.parse(buf.subarray(end + 4, end + 4 + len).toString('utf8')); } catch { /* not JSON */ }
      buf = Buffer.alloc(0);
      script.calls.push(body);
      sock.end(script.answer(body, head));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  script.calls = [];
  script.port = server.address().port;
  script.close = () => server.close();
  return script;
}

const json = (status, obj, extra = '') => {
  const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
  return `HTTP/1.1 ${status} Answer\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
};
const completion = (usage, content = 'ok') => ({
  id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage,
});
const sse = (events) => {
  const body = events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('');
  return `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
};
const chunk = (delta, extra = {}) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: null }], ...extra });

function config(port, extra = '') {
  return `
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl"}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  evil: {base_url: "http://127.0.0.1:${port}/v1", api_key_env: EVIL_KEY, timeout_ms: 2000, first_byte_timeout_ms: 1000, idle_timeout_ms: 1000}
models:
  m: {provider: evil, input: 1, output: 2}
resilience: {retries: {max: 0, base_ms: 1, max_ms: 5}, breaker: {failures: 1000, open_ms: 1}}
${extra}`;
}

describe('a provider claiming impossible usage', () => {
  let provider, gw;
  const HUGE = '9223372036854775807';
  before(async () => {
    provider = await scriptedProvider({
      answer: (req) => (req.stream
        ? sse([chunk({ role: 'assistant', content: '' }), chunk({ content: 'hi' }),
          `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":${HUGE},"completion_tokens":${HUGE},"total_tokens":${HUGE},"prompt_tokens_details":{"cached_tokens":${HUGE}}}}`,
          '[DONE]'])
        : json(200, `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":${HUGE},"completion_tokens":${HUGE},"total_tokens":${HUGE}}}`)),
    });
    gw = await Gateway.start(config(provider.port, `
budgets:
  global: {usd_per_day: 1}
agents:
  a: {}
  b: {}
`), { env: { EVIL_KEY: PROVIDER_SECRET }, keys: { a: { agent: 'a' }, b: { agent: 'b' } } });
  });
  after(async () => { await gw?.stop(); provider?.close(); });

  for (const stream of [false, true]) {
    it(`bills the bound, marked clamped (${stream ? 'stream' : 'plain'}), and the day budget survives`, async () => {
      const res = await chat(gw, gw.keys.a.key, { model: 'm', stream, messages: [{ role: 'user', content: 'hello' }], max_tokens: 5 });
      const text = await res.text();
      const row = await gw.row(res.headers.get('x-request-id'));
      assert.equal(res.status, 200, `${text} ${JSON.stringify(row)}`);
      assert.equal(row.usage_source, 'clamped');
      assert.equal(row.output_tokens, 5, 'output at most the cap sent upstream');
      assert.ok(row.input_tokens < 1000, `input bounded by the request's bytes: ${row.input_tokens}`);
      assert.ok(row.cached_tokens <= row.input_tokens);
      assert.ok(row.cost_micro_usd < 2000, `cost ${row.cost_micro_usd}`);
      // Another agent is still served: one answer did not exhaust the global day.
      const next = await chat(gw, gw.keys.b.key, { model: 'm', messages: [{ role: 'user', content: 'and me?' }], max_tokens: 5 });
      assert.equal(next.status, 200, await next.text());
    });
  }

  it('logs the clamp, with no key in the log', async () => {
    await sleep(100);
    assert.match(gw.stderr, /usage_source=clamped/);
    assert.ok(!gw.stderr.includes(PROVIDER_SECRET));
  });
});

describe('a provider answering statuses no API uses', () => {
  let provider, gw;
  let status = '101 Switching Protocols';
  before(async () => {
    provider = await scriptedProvider({
      answer: () => `HTTP/1.1 ${status}\r\nconnection: upgrade\r\nupgrade: websocket\r\ncontent-length: 2\r\n\r\n{}`,
    });
    gw = await Gateway.start(config(provider.port, 'agents:\n  a: {}\n'), { env: { EVIL_KEY: PROVIDER_SECRET }, keys: { a: { agent: 'a' } } });
  });
  after(async () => { await gw?.stop(); provider?.close(); });

  for (const s of ['101 Switching Protocols', '600 Nope', '999 Unknown']) {
    for (const stream of [false, true]) {
      it(`maps ${s} to a 502 upstream_error (${stream ? 'stream' : 'plain'})`, async () => {
        status = s;
        const res = await chat(gw, gw.keys.a.key, { model: 'm', stream, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
        const text = await res.text();
        assert.equal(res.status, 502, text);
        assert.equal(JSON.parse(text).error.type, 'upstream_error');
        const row = await gw.row(res.headers.get('x-request-id'));
        assert.equal(row.http_status, 502);
        assert.equal(row.cost_micro_usd, 0);
      });
    }
  }
});

describe('a provider quoting its key back', () => {
  let provider, gw;
  let mode = 'error';
  before(async () => {
    provider = await scriptedProvider({
      answer: (req, head) => {
        const quoted = /authorization: Bearer (\S+)/i.exec(head)?.[1] ?? '';
        if (mode === 'error') return json(400, { error: { message: `Bad parameter; key ${quoted} is not allowed to use it`, type: 'invalid_request_error', param: null, code: null } });
        if (mode === 'ok') return json(200, completion({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }, `echo ${quoted}`));
        return sse([chunk({ role: 'assistant', content: '' }), chunk({ content: `echo ${quoted}` }),
          { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }, '[DONE]']);
      },
    });
    gw = await Gateway.start(config(provider.port, 'agents:\n  a: {}\n'), { env: { EVIL_KEY: PROVIDER_SECRET }, keys: { a: { agent: 'a' } } });
  });
  after(async () => { await gw?.stop(); provider?.close(); });

  for (const m of ['error', 'ok', 'stream']) {
    it(`removes the provider key from a relayed ${m} body`, async () => {
      mode = m;
      const res = await chat(gw, gw.keys.a.key, { model: 'm', stream: m === 'stream', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
      const text = await res.text();
      assert.equal(res.status, m === 'error' ? 400 : 200, text);
      assert.ok(provider.calls.length > 0);
      assert.ok(!text.includes(PROVIDER_SECRET), `the key reached the client: ${text}`);
      assert.ok(text.includes('[redacted]'), text);
      if (m === 'stream') {
        const events = (await readSse(new Response(text)));
        assert.equal(events.at(-1), '[DONE]', 'the stream stays well-formed');
      } else {
        JSON.parse(text);  // still JSON
      }
    });
  }
});

describe('a budget refusal between attempts', () => {
  let provider, gw;
  before(async () => {
    // The first attempt's 200 body is cut after its headers: billed at the
    // cap (the provider generated it). The retry cannot be covered any more.
    provider = await scriptedProvider({
      answer: () => 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 500\r\n\r\n{"id":"x","obj',
    });
    gw = await Gateway.start(config(provider.port, `
budgets:
  on_short_budget: reject
agents:
  a: {usd_per_day: 0.0003}
`).replace('retries: {max: 0', 'retries: {max: 2'), { env: { EVIL_KEY: PROVIDER_SECRET }, keys: { a: { agent: 'a' } } });
  });
  after(async () => { await gw?.stop(); provider?.close(); });

  it('answers 429 insufficient_quota with x-should-retry: false, not a 502', async () => {
    const res = await chat(gw, gw.keys.a.key, { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 });
    const text = await res.text();
    assert.equal(res.status, 429, text);
    assert.equal(JSON.parse(text).error.code, 'insufficient_quota');
    assert.equal(res.headers.get('x-should-retry'), 'false');
    assert.equal(provider.calls.length, 1, 'no second call went out unreserved');
    const row = await gw.row(res.headers.get('x-request-id'));
    assert.equal(row.outcome, 'rejected_budget');
    assert.equal(row.attempts.length, 1);
    assert.ok(row.cost_micro_usd > 0, 'the billed attempt is on the record');
  });
});

describe('a call that outlives the reservation TTL', () => {
  let mock, gw, key;
  before(async () => {
    // 30 output tokens at 5 a second: a 6-second stream, against a 1-second TTL.
    mock = await MockUpstream.start({ completion_tokens: 30, tokens_per_second: 5 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl"}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  slow: {base_url: "${mock.url}/v1", connect_timeout_ms: 300, first_byte_timeout_ms: 500, idle_timeout_ms: 800}
models:
  m: {provider: slow, input: 1, output: 2}
budgets:
  on_short_budget: reject
  reservation_ttl_s: 1
agents:
  a: {usd_per_day: 0.00025}
`, { keys: { a: { agent: 'a' } } });
    key = gw.keys.a.key;
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('keeps its reservation while it streams: a second full-size call is refused, the day is not overshot', async () => {
    const body = { model: 'm', stream: true, messages: [{ role: 'user', content: 'tell me a story' }], max_tokens: 100 };
    const first = await chat(gw, key, body);
    assert.equal(first.status, 200);
    const firstText = first.text();
    await sleep(2500);  // more than twice the TTL, mid-stream
    const second = await chat(gw, key, body);
    const secondText = await second.text();
    assert.equal(second.status, 429, `admitted while the first call still holds its reservation: ${secondText}`);
    await firstText;
    const rows = await gw.usage({ minCount: 2 });
    const spent = rows.reduce((s, r) => s + r.cost_micro_usd, 0);
    assert.ok(spent <= 250, `day budget 250 µUSD, spent ${spent}`);
    const bill = await mock.bill();
    assert.ok(bill.cost_micro_usd === undefined || bill.cost_micro_usd <= 250, JSON.stringify(bill));
  });
});
