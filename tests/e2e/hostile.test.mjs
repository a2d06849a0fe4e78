// Hostile traffic against a real `sluice serve`: a few thousand requests, each
// a valid one mutated at random (bytes flipped, inserted, deleted, cut short;
// framing headers lied about; JSON values swapped for hostile ones), sent on
// raw TCP connections. The gateway must stay up and healthy, answer each one
// it answers with a well-formed HTTP response (an OpenAI-shaped error body
// when it refuses), never hold a connection past its header timeout, never
// show a key, and write a usage row for every request it handled.
//
// Deterministic: the mutations come from a seeded generator (SEED below, or
// SLUICE_HOSTILE_SEED); a failure names the seed and the request number.
// SLUICE_BIN may point at a sanitizer build (scripts/test.sh runs this suite
// under ASan+UBSan too): a memory error there kills the process and fails here.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { MockUpstream, Gateway, chat, seededRandom } from './harness.mjs';

const SEED = Number(process.env.SLUICE_HOSTILE_SEED ?? 0x5eed1e55);
const COUNT = Number(process.env.SLUICE_HOSTILE_COUNT ?? 3000);
const PARALLEL = 24;
const PROVIDER_SECRET = 'sk-provider-SECRET-never-shown-0123456789';
const HEADER_TIMEOUT_MS = 400;


const HOSTILE_VALUES = [
  '1e309', '-1', '0', '99999999999999999999999999', '-9223372036854775809', '1.5', 'null', 'true', '[]', '{}',
  '""', '"\\ud800"', '"\\u0000"', '"x\\"y"', `"${'A'.repeat(70000)}"`, '['.repeat(3000) + ']'.repeat(3000),
  '{"a":'.repeat(1500) + '1' + '}'.repeat(1500), '[1,2,', '"unterminated', '\u00ff\u00fe', '{"role":"user"}',
  '[{"role":"user","content":[{"type":"text","text":1}]}]', '[{"role":"nobody","content":"x"}]',
];

function request(method, path, key, body, extra = '') {
  const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
    (body === undefined ? '' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n`) +
    extra + '\r\n';
  return Buffer.from(head + (body ?? ''), 'latin1');
}

function baseRequests(key) {
  const chatBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there, how are you?' }], max_tokens: 8 });
  const streamBody = JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Stream it' }], max_tokens: 6 });
  const embBody = JSON.stringify({ model: 'text-embedding-3-small', input: ['one', 'two'] });
  const complBody = JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Say hi', max_tokens: 5 });
  return [
    { body: chatBody, build: (b, x) => request('POST', '/v1/chat/completions', key, b, x) },
    { body: streamBody, build: (b, x) => request('POST', '/v1/chat/completions', key, b, x) },
    { body: embBody, build: (b, x) => request('POST', '/v1/embeddings', key, b, x) },
    { body: complBody, build: (b, x) => request('POST', '/v1/completions', key, b, x) },
    { body: undefined, build: (_b, x) => request('GET', '/v1/models', key, undefined, x) },
  ];
}

// One mutated request: the bytes to send and what was done (for messages).
function mutate(r, bases, key) {
  const base = bases[Math.floor(r() * bases.length)];
  const pick = (n) => Math.floor(r() * n);
  const kind = pick(9);
  if (kind === 0 && base.body) {
    // A JSON value replaced by a hostile one (the framing stays right).
    const values = [...base.body.matchAll(/:(\s*("[^"]*"|-?\d+|true|false|\[[^\]]*\]|\{[^}]*\}))/g)];
    if (values.length) {
      const v = values[pick(values.length)];
      const at = v.index + 1;
      const body = base.body.slice(0, at) + HOSTILE_VALUES[pick(HOSTILE_VALUES.length)] + base.body.slice(at + v[1].length);
      return { bytes: base.build(body), what: 'hostile JSON value' };
    }
  }
  if (kind === 1) {
    // Framing headers that lie.
    const lies = ['Content-Length: 5\r\n', 'Content-Length: 999999\r\n', 'Content-Length: -1\r\n', 'Content-Length: 1e3\r\n',
      'Content-Length: 18446744073709551616\r\n', 'Transfer-Encoding: chunked\r\n', 'Transfer-Encoding: gzip, chunked\r\n',
      'Content-Length: 10\r\nContent-Length: 11\r\n', 'Expect: 100-continue\r\n', 'Connection: close\r\n',
      `X-Long: ${'v'.repeat(70000)}\r\n`, 'Bad Header: x\r\n', 'X-Sluice-Agent: \u00ff\r\n', 'X-Sluice-Run: \u0001\r\n',
      `X-Sluice-Run: ${'r'.repeat(5000)}\r\n`, 'X-Stainless-Retry-Count: 99999999999999999999\r\n'];
    return { bytes: base.build(base.body, lies[pick(lies.length)]), what: 'lying header' };
  }
  if (kind === 2) {
    // Many header lines.
    return { bytes: base.build(base.body, 'X-A: b\r\n'.repeat(1 + pick(4000))), what: 'many headers' };
  }
  if (kind === 3) {
    // Chunked bodies with bad sizes.
    const chunks = ['5\r\nhello\r\n0\r\n\r\n', 'zz\r\nhello\r\n0\r\n\r\n', 'ffffffffffffffffff\r\nx\r\n', '3\r\nhello\r\n0\r\n\r\n',
      '-1\r\n\r\n', '5;ext=1\r\n{"a":\r\n0\r\n\r\n', '0\r\nTrailer: x\r\n\r\n'];
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    return { bytes: Buffer.from(head + chunks[pick(chunks.length)], 'latin1'), what: 'bad chunked body' };
  }
  const bytes = Buffer.from(base.build(base.body));
  if (kind === 4) {
    // Random bytes overwritten.
    for (let i = 1 + pick(4); i > 0; --i) bytes[pick(bytes.length)] = pick(256);
    return { bytes, what: 'bytes flipped' };
  }
  if (kind === 5) {
    // Random bytes inserted.
    const at = pick(bytes.length);
    const junk = Buffer.from(Array.from({ length: 1 + pick(16) }, () => pick(256)));
    return { bytes: Buffer.concat([bytes.subarray(0, at), junk, bytes.subarray(at)]), what: 'bytes inserted' };
  }
  if (kind === 6) {
    // A range deleted.
    const at = pick(bytes.length);
    return { bytes: Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + 1 + pick(20)))]), what: 'bytes deleted' };
  }
  if (kind === 7) {
    // Cut short: the server must time it out, not wait for ever.
    return { bytes: bytes.subarray(0, pick(bytes.length)), what: 'cut short' };
  }
  // Unchanged: valid traffic mixed in.
  return { bytes, what: 'valid' };
}

// Sends `bytes` on a new connection; resolves with what came back.
function exchange(port, bytes, timeoutMs) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const parts = [];
    let done = false;
    const finish = (how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ how, data: Buffer.concat(parts) });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    sock.on('data', (d) => {
      parts.push(d);
      // A whole response read: stop (the server may keep the connection).
      if (responseComplete(Buffer.concat(parts))) finish('response');
    });
    sock.on('end', () => finish('closed'));
    sock.on('error', () => finish('closed'));
    sock.on('connect', () => sock.write(bytes));
  });
}

// Splits a response into status, headers and body; null while incomplete.
function parseResponse(buf) {
  const text = buf.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]);
  if (!m) return { malformed: true, head: lines[0] };
  const headers = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  const status = Number(m[1]);
  const rest = buf.subarray(end + 4);
  if (status === 100) return { status, headers, body: '', complete: true, interim: true };
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    return { status, headers, body: rest.subarray(0, n).toString('utf8'), complete: rest.length >= n };
  }
  if ((headers['transfer-encoding'] ?? '').includes('chunked')) {
    // The last chunk, then optional trailers, then an empty line.
    const s = rest.toString('latin1');
    return { status, headers, body: s, complete: s.endsWith('\r\n\r\n') && (s.startsWith('0\r\n') || s.includes('\r\n0\r\n')) };
  }
  return { status, headers, body: rest.toString('utf8'), complete: false };
}

function responseComplete(buf) {
  const r = parseResponse(buf);
  if (!r || r.malformed) return false;
  if (r.interim) {
    // 100 Continue, then the real response.
    const next = buf.toString('latin1').indexOf('\r\n\r\n') + 4;
    return responseComplete(buf.subarray(next));
  }
  return r.complete;
}

function finalResponse(buf) {
  let r = parseResponse(buf);
  while (r && r.interim) {
    buf = buf.subarray(buf.toString('latin1').indexOf('\r\n\r\n') + 4);
    r = parseResponse(buf);
  }
  return r;
}

describe(`hostile traffic (seed ${SEED}, ${COUNT} requests)`, () => {
  let mock, gw, key;
  const seenIds = new Set();
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 6 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 2, max_body_bytes: 65536, header_timeout_ms: ${HEADER_TIMEOUT_MS}, idle_timeout_ms: ${HEADER_TIMEOUT_MS}}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1", api_key_env: HOSTILE_PROVIDER_KEY}
budgets:
  run: {usd: 1, calls: 1000000}
agents:
  bot: {max_tokens_per_call: 64, rpm: 100000000}
`, { env: { HOSTILE_PROVIDER_KEY: PROVIDER_SECRET }, keys: { b: { agent: 'bot' } } });
    key = gw.keys.b.key;
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('stays up, answers well-formed, holds no connection, and shows no key', async (t) => {
    const r = seededRandom(SEED);
    const bases = baseRequests(key);
    const counts = {};
    const statuses = {};
    let next = 0;
    const problems = [];
    const worker = async () => {
      while (next < COUNT && problems.length < 5) {
        const n = next++;
        const { bytes, what } = mutate(r, bases, key);
        counts[what] = (counts[what] ?? 0) + 1;
        const t0 = Date.now();
        const { how, data } = await exchange(gw.port, bytes, HEADER_TIMEOUT_MS + 5000);
        const where = `request #${n} (${what}, seed ${SEED})`;
        if (how === 'timeout') {
          problems.push(`${where}: no answer and no close after ${Date.now() - t0} ms`);
          continue;
        }
        const text = data.toString('latin1');
        if (text.includes(key) || text.includes(PROVIDER_SECRET)) problems.push(`${where}: a key in the response`);
        if (data.length === 0) {  // closed without a word: allowed for garbage
          statuses.silent = (statuses.silent ?? 0) + 1;
          continue;
        }
        const res = finalResponse(data);
        statuses[res?.status ?? 'unparsed'] = (statuses[res?.status ?? 'unparsed'] ?? 0) + 1;
        if (!res || res.malformed) {
          problems.push(`${where}: malformed response ${JSON.stringify(text.slice(0, 200))}`);
          continue;
        }
        if (res.headers['x-request-id']) seenIds.add(res.headers['x-request-id']);
        if (res.status >= 400 && res.complete && (res.headers['content-type'] ?? '').includes('application/json')) {
          let err;
          try { err = JSON.parse(res.body).error; } catch { err = undefined; }
          if (!err || typeof err.message !== 'string' || typeof err.type !== 'string') {
            problems.push(`${where}: ${res.status} without an OpenAI error body: ${res.body.slice(0, 200)}`);
          }
        }
        if (res.status >= 500 && res.status !== 503 && what !== 'valid') {
          // A 5xx means the gateway failed, not the request: only upstream trouble may cause one.
          problems.push(`${where}: ${res.status} ${res.body.slice(0, 200)}`);
        }
        if (n % 200 === 0) {
          // fetch keeps its connection from the last check; the gateway closes
          // connections idle for HEADER_TIMEOUT_MS, about the time between
          // checks, so a reuse can race the close. That is a transport error
          // (the SDKs retry it); try once more on a fresh connection. A dead
          // gateway still fails below.
          const check = () => chat(gw, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still there?' }], max_tokens: 4 });
          const ok = await check().catch(() => check());
          if (ok.status !== 200) problems.push(`after request #${n}: a valid request got ${ok.status}`);
          else seenIds.add(ok.headers.get('x-request-id'));
          await ok.text();
        }
        assert.equal(gw.child.exitCode, null, `sluice serve exited after ${where}: ${gw.stderr.slice(-2000)}`);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    t.diagnostic(`mutations ${JSON.stringify(counts)}; answers ${JSON.stringify(statuses)}`);
    assert.deepEqual(problems, [], `counts: ${JSON.stringify(counts)}`);
    // The mix reached every layer: refusals by the HTTP parser, by the JSON
    // checks, by the header timeout, and answers from the upstream.
    for (const s of [200, 400, 408]) assert.ok(statuses[s] > 0, `some ${s} answers: ${JSON.stringify(statuses)}`);
    assert.equal(gw.child.exitCode, null, gw.stderr.slice(-2000));
    assert.ok((counts.valid ?? 0) > COUNT / 20, `valid requests were mixed in: ${JSON.stringify(counts)}`);
    const res = await chat(gw, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'and now?' }], max_tokens: 4 });
    assert.equal(res.status, 200);
    await res.text();
  });

  it('stops cleanly, with a usage row for every request it answered and no key anywhere', async () => {
    const log = gw.usageLog;
    const stderr = () => gw.stderr;
    const code = await gw.terminate();
    assert.equal(code, 0, stderr().slice(-2000));
    assert.doesNotMatch(stderr(), /AddressSanitizer|runtime error|LeakSanitizer/);
    const text = readFileSync(log, 'utf8');
    assert.ok(!text.includes(key) && !text.includes(PROVIDER_SECRET), 'no key in the usage log');
    assert.ok(!stderr().includes(key) && !stderr().includes(PROVIDER_SECRET), 'no key in the gateway log');
    const ids = new Set(text.split('\n').filter(Boolean).map((l) => JSON.parse(l).request_id));
    const missing = [...seenIds].filter((id) => !ids.has(id));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${seenIds.size} answered requests have no usage row`);
    assert.ok(seenIds.size > COUNT / 10, `the gateway handled a good share of the requests (${seenIds.size})`);
  });
});

// Client numbers that meet a multiplication: output cap × choices must
// saturate, never wrap negative and slip past the TPM limit; best_of is
// bounded as n is. Each of these was served on a used-up TPM window before.
describe('hostile numbers against the limits', () => {
  let mock, gw, open, capped;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 4 });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl"}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1"}
agents:
  open: {tpm: 1000, rpm: 1000000}
  capped: {tpm: 1000, rpm: 1000000, max_tokens_per_call: 100}
`, { keys: { o: { agent: 'open' }, c: { agent: 'capped' } } });
    open = gw.keys.o.key;
    capped = gw.keys.c.key;
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  const post = (path, key, body) => fetch(`${gw.url}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body,
  });

  for (const [what, body] of [
    ['max_tokens 2^63-1', '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":9223372036854775807}'],
    ['max_tokens 2^62 with n 2', '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":4611686018427387904,"n":2}'],
    ['max_completion_tokens 2^62 with n 4', '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":4611686018427387904,"n":4}'],
  ]) {
    it(`refuses ${what} without a cap: 429 on tokens, not served`, async () => {
      const res = await post('/v1/chat/completions', open, body);
      const text = await res.text();
      assert.equal(res.status, 429, text);
      assert.equal(JSON.parse(text).error.type, 'tokens');
    });
  }

  it('refuses best_of beyond the bound of n (a capped agent too)', async () => {
    for (const best of ['576460752303423489', '129']) {
      const res = await post('/v1/completions', capped, `{"model":"gpt-4o-mini","prompt":"hi","max_tokens":16,"best_of":${best}}`);
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.equal(JSON.parse(text).error.param, 'best_of');
    }
  });

  it('refuses prompts × n past the TPM limit for a /v1/completions prompt array', async () => {
    const prompts = JSON.stringify(Array.from({ length: 50 }, (_, i) => `p${i}`));
    const res = await post('/v1/completions', capped, `{"model":"gpt-4o-mini","prompt":${prompts},"max_tokens":20,"n":2}`);
    const text = await res.text();
    assert.equal(res.status, 429, `50 prompts × 2 × 20 tokens is over 1000 TPM: ${text}`);
  });

  it('still serves an honest request afterwards (the window was not used up)', async () => {
    const res = await post('/v1/chat/completions', open, '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}');
    assert.equal(res.status, 200, await res.text());
  });
});
