// Hardening of the HTTP edge, against a real `sluice serve` on raw TCP
// connections (what an SDK would never send):
//  - every answer the HTTP layer writes itself (400, 408, 413, 431, the 503s)
//    is a traced request: an x-request-id and a usage row;
//  - requests without a valid key are refused from their head, before the
//    body is read; the body bytes buffered across connections are capped,
//    and memory goes back after a burst (RSS measured from /proc).
// SLUICE_BIN may point at a sanitizer build (scripts/test.sh runs this suite
// under ASan+UBSan too); the RSS figures are then only reported, not checked.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { MockUpstream, Gateway, sleep } from './harness.mjs';

const ID = /^req_[0-9a-f]{24}$/;

// Sends `bytes` on a new connection and resolves with the parsed answer once
// a whole response arrived, or on close / after `timeoutMs`.
function exchange(port, bytes, { timeoutMs = 5000, keepOpen = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!keepOpen || how !== 'response') sock.destroy();
      resolve({ how, sock, ...(parseResponse(buf) ?? {}), raw: buf.toString('latin1') });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (parseResponse(buf)?.complete) finish('response');
    });
    sock.on('close', () => finish('closed'));
    sock.on('error', () => finish('closed'));
    sock.on('connect', () => { if (bytes.length) sock.write(bytes); });
  });
}

// Status, lower-case headers and body of the first response in `buf`.
function parseResponse(buf) {
  const text = buf.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = text.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 0);
  const headers = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  const rest = buf.subarray(end + 4);
  const n = Number(headers['content-length'] ?? -1);
  return { status, headers, body: rest.subarray(0, Math.max(n, 0)).toString('utf8'), complete: n >= 0 && rest.length >= n };
}

const post = (path, key, length, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\n${key ? `Authorization: Bearer ${key}\r\n` : ''}` +
  `Content-Type: application/json\r\nContent-Length: ${length}\r\n${extra}\r\n`;

function errorOf(res) {
  assert.equal(res.headers['content-type'], 'application/json', res.raw.slice(0, 300));
  return JSON.parse(res.body).error;
}

// The last test of each suite: the gateway stops cleanly (SIGTERM), without
// a sanitizer report when SLUICE_BIN is an ASan build.
function itStopsCleanly(getGateway) {
  it('stops cleanly', async () => {
    const gw = getGateway();
    const code = await gw.terminate();
    assert.equal(code, 0, gw.stderr.slice(-2000));
    assert.doesNotMatch(gw.stderr, /AddressSanitizer|runtime error|LeakSanitizer/);
  });
}

// A mock provider and a gateway in front of it with one agent, `bot`, and
// its key; `server` is the rest of the server: mapping.
async function oneBotGateway(server, mockKnobs) {
  const mock = await MockUpstream.start(mockKnobs);
  const gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", ${server}}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1"}
agents:
  bot: {}
`, { keys: { b: { agent: 'bot' } } });
  return { mock, gw, key: gw.keys.b.key };
}

describe('answers the HTTP layer writes itself are traced requests', () => {
  let mock, gw, key;
  before(async () => {
    ({ mock, gw, key } = await oneBotGateway('threads: 1, max_body_bytes: 65536, header_timeout_ms: 1000, max_connections: 3', {}));
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  // Each answer carries an x-request-id whose usage row says what happened.
  async function traced(res, status, code, outcome = 'rejected_invalid') {
    assert.equal(res.status, status, res.raw.slice(0, 300));
    assert.equal(res.headers.connection, 'close');
    assert.match(res.headers['x-request-id'] ?? '', ID, `x-request-id on the ${status}`);
    assert.equal(errorOf(res).code, code);
    const row = await gw.row(res.headers['x-request-id']);
    assert.ok(row, `a usage row for the ${status}`);
    assert.equal(row.outcome, outcome);
    assert.equal(row.http_status, status);
    assert.equal(row.error_code, code);
    assert.equal(row.cost_micro_usd, 0);
    assert.equal(res.headers['x-sluice-config-version'], row.config_version);
    return row;
  }

  it('400 for unparseable HTTP and for a request without Host', async () => {
    const garbage = await traced(await exchange(gw.port, Buffer.from('GET /\x01 nonsense\r\n\r\n', 'latin1')), 400, 'invalid_http');
    assert.equal(garbage.endpoint, '');
    assert.equal(garbage.agent, '');
    const noHost = await traced(await exchange(gw.port, Buffer.from('GET /v1/models HTTP/1.1\r\n\r\n')), 400, 'invalid_http');
    assert.equal(noHost.endpoint, 'models', 'the endpoint, from the request line');
    const twoHosts = await exchange(gw.port, Buffer.from('GET /v1/models HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'));
    await traced(twoHosts, 400, 'invalid_http');
    const te10 = await exchange(gw.port, Buffer.from(`POST /v1/embeddings HTTP/1.0\r\nAuthorization: Bearer ${key}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`));
    await traced(te10, 400, 'invalid_http');
  });

  it('ignores one empty line before a request line (RFC 9112 2.2)', async () => {
    const res = await exchange(gw.port, Buffer.from('\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(res.status, 200, res.raw.slice(0, 200));
  });

  it('431 for a header block over the limit', async () => {
    const res = await exchange(gw.port, Buffer.from(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`));
    await traced(res, 431, 'request_header_fields_too_large');
  });

  it('413 for a body over max_body_bytes, with the key and agent it named', async () => {
    const res = await exchange(gw.port, Buffer.from(post('/v1/chat/completions', key, 100000)));
    const row = await traced(res, 413, 'request_too_large');
    assert.equal(row.endpoint, 'chat.completions');
    assert.equal(row.agent, 'bot');
    assert.equal(row.key_id, gw.keys.b.id);
  });

  it('408 for a request that does not arrive in time', async () => {
    const res = await exchange(gw.port, Buffer.from(post('/v1/embeddings', key, 100) + '{"mod'), { timeoutMs: 5000 });
    const row = await traced(res, 408, 'request_timeout');
    assert.equal(row.endpoint, 'embeddings');
  });

  it('503 for a connection over max_connections', async () => {
    await sleep(200);  // the connections of the tests above are gone
    const held = [];
    for (let i = 0; i < 4; ++i) held.push(exchange(gw.port, Buffer.alloc(0), { timeoutMs: 800 }));
    const answers = (await Promise.all(held)).filter((r) => r.status);
    assert.equal(answers.length, 1, 'one connection over the cap of three');
    const row = await traced(answers[0], 503, 'server_overloaded', 'rejected_overload');
    assert.equal(answers[0].headers['retry-after'], '1');
    assert.equal(errorOf(answers[0]).type, 'server_error');
    assert.equal(row.endpoint, '');
  });

  itStopsCleanly(() => gw);
});

// Resident memory of a process, in MiB (VmRSS of /proc/PID/status).
function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) / 1024;
}
// An ASan build keeps freed memory in quarantine: its RSS proves nothing.
const sanitized = (pid) => readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libasan');
const fmt = (x) => x.toFixed(1);

const NO_KEY = "You didn't provide an API key. Provide your Sluice virtual key in the Authorization header (Bearer sk-sluice-...).";
const BAD_KEY = 'Incorrect API key provided, or the key was revoked.';
const MiB = 1024 * 1024;

describe('requests without a valid key are refused from their head', () => {
  let mock, gw, key;
  before(async () => {
    ({ mock, gw, key } = await oneBotGateway('threads: 2', { completion_tokens: 2 }));
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  async function refused(res, message) {
    assert.equal(res.status, 401, res.raw.slice(0, 300));
    assert.equal(res.headers.connection, 'close');
    const err = errorOf(res);
    assert.deepEqual([err.type, err.code, err.message], ['invalid_request_error', 'invalid_api_key', message]);
    assert.match(res.headers['x-request-id'] ?? '', ID);
    const row = await gw.row(res.headers['x-request-id']);
    assert.equal(row?.outcome, 'rejected_auth');
    assert.equal(row.http_status, 401);
    assert.equal(row.error_code, 'invalid_api_key');
    assert.equal(row.agent, '');
    return row;
  }

  it('answers a missing key 401 before the body is sent', async () => {
    // Only the head of a 1 MiB request: the answer must not wait for the body.
    const res = await exchange(gw.port, Buffer.from(post('/v1/chat/completions', null, MiB)), { timeoutMs: 3000 });
    const row = await refused(res, NO_KEY);
    assert.equal(row.endpoint, 'chat.completions');
  });

  it('answers an unknown key 401 before the body, never echoing it', async () => {
    const stranger = 'sk-sluice-aaaaaaaaaaaa_' + 'b'.repeat(43);
    const res = await exchange(gw.port, Buffer.from(post('/v1/embeddings', stranger, MiB)), { timeoutMs: 3000 });
    await refused(res, BAD_KEY);
    assert.ok(!res.raw.includes('bbbbbbbb'));
  });

  it('answers Expect: 100-continue without a key with the 401, not a 100', async () => {
    const res = await exchange(gw.port, Buffer.from(post('/v1/chat/completions', null, 5000, 'Expect: 100-continue\r\n')), { timeoutMs: 3000 });
    assert.ok(res.raw.startsWith('HTTP/1.1 401 '), res.raw.slice(0, 100));
    await refused(res, NO_KEY);
    // With a key, the 100 comes and then the answer.
    const body = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] });
    const ok = await new Promise((resolve) => {
      const sock = net.connect(gw.port, '127.0.0.1');
      let text = '';
      sock.on('connect', () => sock.write(post('/v1/chat/completions', key, body.length, 'Expect: 100-continue\r\n')));
      sock.on('data', (d) => {
        text += d.toString();
        if (text === 'HTTP/1.1 100 Continue\r\n\r\n') sock.write(body);
        if (parseResponse(Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4)))?.complete) { sock.destroy(); resolve(text); }
      });
      sock.on('error', () => resolve(text));
    });
    assert.ok(ok.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 '), ok.slice(0, 200));
  });

  it('serves /healthz and /readyz without a key', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await exchange(gw.port, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
      assert.equal(res.status, 200, `${path}: ${res.raw.slice(0, 200)}`);
    }
  });

  it('buffers nothing for keyless bodies: 100 connections sending 1 MiB each leave RSS flat', async (t) => {
    const pid = gw.child.pid;
    const before = rssMiB(pid);
    const body = Buffer.alloc(MiB, 'x');
    const socks = [];
    const answers = await Promise.all(Array.from({ length: 100 }, () => new Promise((resolve) => {
      const sock = net.connect(gw.port, '127.0.0.1');
      socks.push(sock);
      let buf = Buffer.alloc(0);
      sock.on('connect', () => { sock.write(post('/v1/chat/completions', null, MiB)); sock.write(body); });
      sock.on('data', (d) => { buf = Buffer.concat([buf, d]); if (parseResponse(buf)?.complete) resolve(parseResponse(buf).status); });
      sock.on('error', () => resolve(parseResponse(buf)?.status ?? 'reset'));
      sock.on('close', () => resolve(parseResponse(buf)?.status ?? 'closed'));
    })));
    const during = rssMiB(pid);  // every connection answered, most still open (lingering)
    for (const s of socks) s.destroy();
    await sleep(1500);
    const after = rssMiB(pid);
    const counts = {};
    for (const a of answers) counts[a] = (counts[a] ?? 0) + 1;
    t.diagnostic(`keyless burst, VmRSS MiB: before ${fmt(before)}, during ${fmt(during)}, after ${fmt(after)}; answers ${JSON.stringify(counts)}`);
    assert.ok((counts[401] ?? 0) >= 95, `the keyless requests were answered 401: ${JSON.stringify(counts)}`);
    if (sanitized(pid)) return;
    assert.ok(during - before < 20, `RSS grew by ${fmt(during - before)} MiB during the burst`);
    assert.ok(after - before < 20, `RSS stayed ${fmt(after - before)} MiB above the start after the burst`);
  });

  itStopsCleanly(() => gw);
});

// A chat request body of exactly `size` bytes (the content pads it).
function chatBody(size, max_tokens = 2) {
  const shell = JSON.stringify({ model: 'gpt-4o-mini', max_tokens, messages: [{ role: 'user', content: '' }] });
  return JSON.stringify({ model: 'gpt-4o-mini', max_tokens, messages: [{ role: 'user', content: 'x'.repeat(size - shell.length) }] });
}

// A connection that sends a request's head and part of its body, and the
// rest on demand; `answer` resolves with the response.
function partialRequest(port, head, body, sentBytes) {
  const sock = net.connect(port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  const answer = new Promise((resolve) => {
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); const r = parseResponse(buf); if (r?.complete) resolve(r); });
    sock.on('close', () => resolve(parseResponse(buf) ?? { status: 0 }));
    sock.on('error', () => {});
  });
  sock.on('connect', () => sock.write(head + body.slice(0, sentBytes)));
  return { sock, answer, rest: () => sock.write(body.slice(sentBytes)) };
}

describe('request bodies held across connections are capped (server.max_buffered_body_bytes)', () => {
  let mock, gw, key;
  before(async () => {
    ({ mock, gw, key } = await oneBotGateway(`threads: 2, max_body_bytes: ${MiB}, max_buffered_body_bytes: ${2 * MiB}`, { completion_tokens: 2 }));
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('answers 503 server_overloaded with retry-after from the head above the cap, and serves again below it', async () => {
    const body = chatBody(MiB);
    const head = post('/v1/chat/completions', key, body.length);
    // Two 1 MiB bodies on their way: the cap of 2 MiB is taken.
    const one = partialRequest(gw.port, head, body, 1000);
    const two = partialRequest(gw.port, head, body, 1000);
    await sleep(300);
    const over = await exchange(gw.port, Buffer.from(head), { timeoutMs: 3000 });  // its body is not even sent
    assert.equal(over.status, 503, over.raw.slice(0, 300));
    assert.equal(over.headers['retry-after'], '1');
    assert.equal(over.headers.connection, 'close');
    const err = errorOf(over);
    assert.deepEqual([err.type, err.code], ['server_error', 'server_overloaded']);
    assert.match(over.headers['x-request-id'] ?? '', ID);
    const row = await gw.row(over.headers['x-request-id']);
    assert.equal(row?.outcome, 'rejected_overload');
    assert.equal(row.http_status, 503);
    assert.equal(row.error_code, 'server_overloaded');
    assert.equal(row.agent, 'bot', 'the head named a valid key');
    assert.equal(row.endpoint, 'chat.completions');
    // A small body does not fit either while both are held.
    const small = chatBody(200);
    assert.equal((await exchange(gw.port, Buffer.from(post('/v1/chat/completions', key, small.length) + small))).status, 503);
    // The two complete and are served; then there is room again.
    one.rest();
    two.rest();
    assert.deepEqual([(await one.answer).status, (await two.answer).status], [200, 200]);
    one.sock.destroy();
    two.sock.destroy();
    const again = await exchange(gw.port, Buffer.from(head + body), { timeoutMs: 5000 });
    assert.equal(again.status, 200, again.raw.slice(0, 300));
  });

  itStopsCleanly(() => gw);
});

describe('memory goes back after a burst of request bodies', () => {
  let mock, gw, key;
  before(async () => {
    ({ mock, gw, key } = await oneBotGateway('threads: 2', { completion_tokens: 2 }));
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('100 keyed 1 MiB bodies at once: RSS rises by their size, then falls back within seconds', async (t) => {
    const pid = gw.child.pid;
    const body = chatBody(MiB);
    const head = post('/v1/chat/completions', key, body.length);
    const warm = await exchange(gw.port, Buffer.from(head + body), { timeoutMs: 5000 });
    assert.equal(warm.status, 200, warm.raw.slice(0, 300));
    await sleep(1500);  // past any release the warm-up itself triggered
    const before = rssMiB(pid);
    // Every body held at once: all but its last byte sent.
    const burst = Array.from({ length: 100 }, () => partialRequest(gw.port, head, body, body.length - 1));
    let during = rssMiB(pid);
    for (let i = 0; i < 40; ++i) {  // until the bytes are in (RSS stops growing)
      await sleep(100);
      const now = rssMiB(pid);
      if (now - during < 1 && now - before > 80) break;
      during = Math.max(during, now);
    }
    during = Math.max(during, rssMiB(pid));
    for (const r of burst) r.rest();
    const statuses = await Promise.all(burst.map((r) => r.answer.then((a) => a.status)));
    for (const r of burst) r.sock.destroy();
    const answered = rssMiB(pid);
    let after = answered;
    for (let i = 0; i < 40 && after - before >= 20; ++i) {  // the release runs on a one-second tick
      await sleep(250);
      after = rssMiB(pid);
    }
    t.diagnostic(`keyed burst of 100 x 1 MiB, VmRSS MiB: before ${fmt(before)}, during ${fmt(during)}, ` +
                 `answered ${fmt(answered)}, after ${fmt(after)}`);
    assert.deepEqual([...new Set(statuses)], [200]);
    if (sanitized(pid)) return;
    assert.ok(during - before > 60, `the bodies were held at once (RSS +${fmt(during - before)} MiB)`);
    assert.ok(after - before < 20, `RSS fell back to within 20 MiB of the start (+${fmt(after - before)} MiB)`);
  });

  itStopsCleanly(() => gw);
});
