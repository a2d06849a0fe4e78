// A hostile provider: the gateway's upstream answers each call with a valid
// OpenAI response mutated at random (bytes flipped or cut, framing that lies,
// broken chunked encoding, malformed or endless SSE events, absurd usage
// numbers, garbage status lines and retry-after values, stalls, silence).
// Clients send ordinary chat requests, streaming and not. The gateway must
// stay up, answer every client with a well-formed response (errors
// OpenAI-shaped, streams whose every event is JSON and that end properly),
// and write exactly one sane usage row per request: integer, non-negative
// tokens and cost, whatever the provider claimed.
//
// Deterministic mutations (SLUICE_HOSTILE_SEED); SLUICE_BIN may be a
// sanitizer build (scripts/test.sh runs this suite under ASan+UBSan too).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { Gateway, chat, seededRandom } from './harness.mjs';

const SEED = Number(process.env.SLUICE_HOSTILE_SEED ?? 0x0bad5eed);
const COUNT = Number(process.env.SLUICE_HOSTILE_UPSTREAM_COUNT ?? 600);
const PARALLEL = 8;
const PROVIDER_SECRET = 'sk-provider-UPSTREAM-secret-9876543210';


const HOSTILE_NUMBERS = ['1e30', '-5', '"12"', 'null', '18446744073709551616', '9223372036854775807', '1.5', '[]', '{}', '-0', '1e-7'];

function completion(model) {
  return JSON.stringify({
    id: 'chatcmpl-x', object: 'chat.completion', created: 1, model,
    choices: [{ index: 0, message: { role: 'assistant', content: 'Fine, thanks. And you?' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18, prompt_tokens_details: { cached_tokens: 0 } },
  });
}

function streamEvents(model) {
  const base = { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1, model };
  const ev = (o) => `data: ${JSON.stringify({ ...base, ...o })}\n\n`;
  return [
    ev({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }], usage: null }),
    ev({ choices: [{ index: 0, delta: { content: 'Fine' }, finish_reason: null }], usage: null }),
    ev({ choices: [{ index: 0, delta: { content: ', thanks.' }, finish_reason: null }], usage: null }),
    ev({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null }),
    ev({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 } }),
    'data: [DONE]\n\n',
  ];
}

const chunked = (parts) => parts.map((p) => `${Buffer.byteLength(p, 'latin1').toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n';

// The bytes of one upstream answer to `req` ({stream, model}), and whether
// the connection may be kept open after it.
function answer(r, req) {
  const pick = (n) => Math.floor(r() * n);
  const kind = pick(14);
  const head = (status, extra, framing) => `HTTP/1.1 ${status}\r\ncontent-type: ${req.stream ? 'text/event-stream' : 'application/json'}\r\n${extra}${framing}\r\n`;
  if (req.stream) {
    let events = streamEvents(req.model);
    if (kind === 0) {
      // Usage numbers the provider should never send.
      events[4] = events[4].replace('"completion_tokens":3', `"completion_tokens":${HOSTILE_NUMBERS[pick(HOSTILE_NUMBERS.length)]}`);
    } else if (kind === 1) {
      events.splice(1 + pick(3), 0, 'data: {"choices":[{"delta":{"content":"broken"\n\n');  // malformed JSON event
    } else if (kind === 2) {
      events.splice(2, 0, `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'z'.repeat(100000) } }] })}\n\n`);
    } else if (kind === 3) {
      events = [events[0], ...Array.from({ length: 2000 }, () => events[1]), ...events.slice(3)];  // far past the cap
    } else if (kind === 4) {
      events = events.slice(0, 1 + pick(5));  // ends early, no [DONE]
    } else if (kind === 5) {
      events.splice(1, 0, ': keep-alive comment\n\n', 'event: ping\n\n', 'data:\n\n', 'retry: 10\n\n');
    }
    let bytes = head('200 OK', '', 'transfer-encoding: chunked\r\n') + chunked(events);
    if (kind === 6) bytes = bytes.replace(/\r\n([0-9a-f]+)\r\n/, '\r\nzz\r\n');  // bad chunk size
    if (kind === 7) bytes = bytes.slice(0, pick(bytes.length));  // cut short
    return finish(r, bytes, kind, pick);
  }
  let body = completion(req.model);
  if (kind === 0) body = body.replace('"completion_tokens":7', `"completion_tokens":${HOSTILE_NUMBERS[pick(HOSTILE_NUMBERS.length)]}`);
  if (kind === 1) body = body.replace('"prompt_tokens":11', `"prompt_tokens":${HOSTILE_NUMBERS[pick(HOSTILE_NUMBERS.length)]}`);
  if (kind === 2) body = body.slice(0, pick(body.length));  // truncated JSON, honest length
  if (kind === 3) body = body.replace(/"usage":\{[^}]*\{[^}]*\}\}/, '"usage":"lots"');
  if (kind === 4) body = '{"a":' .repeat(5000) + '1' + '}'.repeat(5000);
  if (kind === 5) body = 'not json at all \u00ff';
  let bytes = head('200 OK', '', `content-length: ${Buffer.byteLength(body, 'latin1')}\r\n`) + body;
  if (kind === 6) bytes = head('200 OK', '', `content-length: ${body.length + 50}\r\n`) + body;  // promises more than it sends
  if (kind === 7) bytes = bytes.slice(0, pick(bytes.length));
  return finish(r, bytes, kind, pick);
}

function finish(r, bytes, kind, pick) {
  const close = { bytes, keep: false, kind };
  if (kind === 8) {
    // Random bytes overwritten anywhere (status line and headers included).
    const b = Buffer.from(bytes, 'latin1');
    for (let i = 1 + pick(4); i > 0; --i) b[pick(b.length)] = pick(256);
    return { bytes: b, keep: false, kind };
  }
  if (kind === 9) {
    const statuses = ['429 Too Many Requests\r\nretry-after: 99999999999', '429 Too Many Requests\r\nretry-after: -1',
      '429 Too Many Requests\r\nretry-after: abc\r\nretry-after-ms: 1e400', '500 Internal Server Error', '503 Busy\r\nretry-after: 0',
      '400 Bad Request', '401 Unauthorized', '299 Odd', '600 Beyond', 'xyz', '200'];
    const s = statuses[pick(statuses.length)];
    return { bytes: `HTTP/1.1 ${s}\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{"error":42}`, keep: false, kind };
  }
  if (kind === 10) return { bytes: Buffer.alloc(0), keep: false, kind };  // silence, then close
  if (kind === 11) return { bytes: `HTTP/1.1 200 OK\r\n${'x-h: v\r\n'.repeat(5000)}content-length: 2\r\n\r\n{}`, keep: false, kind };
  if (kind === 12) return { bytes: null, keep: false, kind };  // stall: say nothing, keep the connection open
  return kind === 13 ? { bytes, keep: true, kind } : close;
}

// A provider on raw sockets: reads each request (head + content-length body)
// and writes the chosen answer.
function startProvider(r, seen, kinds) {
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const headText = buf.subarray(0, end).toString('latin1');
        const m = /content-length:\s*(\d+)/i.exec(headText);
        const len = m ? Number(m[1]) : 0;
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
        buf = buf.subarray(end + 4 + len);
        seen.push(headText);
        let req;
        try { req = JSON.parse(body); } catch { req = {}; }
        const a = answer(r, { stream: !!req.stream, model: req.model ?? 'm' });
        // Which mutations each client request met (its number is in the prompt).
        const n = /req-(\d+)/.exec(body)?.[1];
        if (n !== undefined) (kinds[n] ??= []).push(`${req.stream ? 'stream' : 'plain'}:${a.kind}`);
        if (a.bytes === null) return;  // stall
        sock.write(a.bytes);
        if (!a.keep) { sock.end(); return; }
      }
    });
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res(server)));
}

describe(`hostile upstream (seed ${SEED}, ${COUNT} requests)`, () => {
  let provider, gw, key;
  const seen = [];
  const kinds = {};
  let sent = 0;
  before(async () => {
    provider = await startProvider(seededRandom(SEED), seen, kinds);
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 2}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  evil: {base_url: "http://127.0.0.1:${provider.address().port}/v1", api_key_env: EVIL_KEY, timeout_ms: 1500,
         first_byte_timeout_ms: 300, idle_timeout_ms: 300, connect_timeout_ms: 500}
models:
  m: {provider: evil, input: 1, output: 2}
resilience: {retries: {max: 1, base_ms: 1, max_ms: 5}, breaker: {failures: 1000, open_ms: 1}}
agents:
  bot: {max_tokens_per_call: 50, rpm: 100000000}
`, { env: { EVIL_KEY: PROVIDER_SECRET }, keys: { b: { agent: 'bot' } } });
    key = gw.keys.b.key;
  });
  after(async () => { await gw?.stop(); provider?.close(); });

  it('answers every client well-formed and stays up', async (t) => {
    let next = 0;
    const problems = [];
    const statuses = {};
    const worker = async () => {
      while (next < COUNT && problems.length < 5) {
        const n = next++;
        const stream = n % 2 === 1;
        const where = `request #${n} (${stream ? 'stream' : 'plain'}, seed ${SEED})`;
        let res;
        try {
          sent++;
          res = await chat(gw, key, { model: 'm', stream, messages: [{ role: 'user', content: `How are you? req-${n}` }], max_tokens: 20 });
        } catch (e) {
          problems.push(`${where}: ${e.message}`);
          continue;
        }
        const text = await res.text();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (text.includes(PROVIDER_SECRET) || text.includes(key)) problems.push(`${where}: a key in the response`);
        if (res.status === 500) problems.push(`${where}: 500 ${text.slice(0, 200)}`);
        if (res.status === 200 && stream) {
          // The provider's malformed events (kinds 1, 5 and 8) are relayed as
          // they are, by design (stream_filter.h): the client sees what the
          // provider sent. Every other event must parse. The stream ends with
          // [DONE], or, cut after bytes went out, with an error event.
          const relayedMalformed = (kinds[n] ?? []).some((k) => ['stream:1', 'stream:5', 'stream:8'].includes(k));
          const events = text.split('\n\n').filter((b) => b.trim() !== '')
            .map((e) => e.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'))
            .filter((d) => d !== '');
          const parsed = [];
          for (const d of events) {
            if (d === '[DONE]') { parsed.push(d); continue; }
            try { parsed.push(JSON.parse(d)); } catch (e) {
              if (!relayedMalformed) problems.push(`${where}: an event an SDK cannot parse (${e.message}), kinds ${kinds[n]}: ${d.slice(0, 200)}`);
              parsed.push(null);
            }
          }
          const last = parsed.at(-1);
          if (last !== '[DONE]' && !(last && typeof last === 'object' && last.error && typeof last.error.message === 'string')) {
            problems.push(`${where}: the stream ends with neither [DONE] nor an error event, kinds ${kinds[n]}: ${text.slice(-300)}`);
          }
        } else if (res.status >= 400 && (res.headers.get('content-type') ?? '').includes('application/json')) {
          let err;
          try { err = JSON.parse(text).error; } catch { err = undefined; }
          // A 4xx other than 429 is the provider's own answer, relayed as it is.
          const relayed = res.status >= 400 && res.status < 500 && res.status !== 429;
          if (!relayed && (!err || typeof err.message !== 'string')) problems.push(`${where}: ${res.status} without an OpenAI error: ${text.slice(0, 200)}`);
        }
        assert.equal(gw.child.exitCode, null, `sluice serve exited after ${where}: ${gw.stderr.slice(-2000)}`);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    t.diagnostic(`answers ${JSON.stringify(statuses)}; upstream calls ${seen.length}`);
    assert.deepEqual(problems, []);
    assert.ok(statuses[200] > COUNT / 10, `some calls succeeded: ${JSON.stringify(statuses)}`);
    assert.ok(seen.length >= COUNT, 'every request reached the provider at least once');
    assert.ok(seen.every((h) => h.includes(`Bearer ${PROVIDER_SECRET}`)), 'the provider key went upstream, server-side');
  });

  it('writes one sane usage row per request and stops cleanly', async () => {
    const stderr = () => gw.stderr;
    const code = await gw.terminate();
    assert.equal(code, 0, stderr().slice(-2000));
    assert.doesNotMatch(stderr(), /AddressSanitizer|runtime error|LeakSanitizer/);
    assert.ok(!stderr().includes(PROVIDER_SECRET) && !stderr().includes(key), 'no key in the gateway log');
    const text = readFileSync(gw.usageLog, 'utf8');
    assert.ok(!text.includes(PROVIDER_SECRET) && !text.includes(key), 'no key in the usage log');
    const rows = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(rows.length, sent, 'one row per request');
    // Integers from 0 to 2^63-1: a provider may claim absurd usage (it is
    // recorded as claimed; budgets clamp it), never a negative, fractional or
    // wrapped-around one. JSON.parse rounds above 2^53, so the bound is
    // checked on the digits.
    const fields = ['input_tokens', 'cached_tokens', 'output_tokens', 'reasoning_tokens', 'cost_micro_usd'];
    const lines = text.split('\n').filter(Boolean);
    for (const [i, row] of rows.entries()) {
      for (const f of fields) {
        for (const m of lines[i].matchAll(new RegExp(`"${f}":(-?[0-9.eE+-]+)`, 'g'))) {
          const ok = /^[0-9]+$/.test(m[1]) && BigInt(m[1]) <= 9223372036854775807n;
          assert.ok(ok, `${f} = ${m[1]} in ${lines[i].slice(0, 600)}`);
        }
      }
      assert.ok(row.attempts.length >= 1 || row.outcome !== 'ok', `an ok row has its attempts: ${lines[i].slice(0, 300)}`);
    }
  });
});
