// Everything that crosses threads in `sluice serve`, at once: a four-loop
// gateway serves chat (streamed and not), embeddings and model lists from two
// providers shared by every loop (an HTTP mock-upstream and the in-process
// mock), while the main thread reloads the config (SIGHUP: limits, a
// profile's substitution, a provider's pool settings change), the usage log
// is rotated (rename + SIGUSR1), keys are created and revoked by another
// process (the gateway's key refresh), and /readyz reads the usage writer's
// state. scripts/tsan.sh runs it against a ThreadSanitizer build, where a
// data race kills the gateway; against any build it checks what must hold
// anyway: every request answered, each with exactly one ledger row across
// the rotated files, both configurations served, each new key accepted and
// refused once revoked (upkeep is not starved by the signals), and a clean
// exit. Choices are seeded (SLUICE_HOSTILE_SEED, as the hostile suites).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync, renameSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MockUpstream, Gateway, SLUICE, chat, readSse, seededRandom, sleep, scaled } from './harness.mjs';

const run = promisify(execFile);
const SEED = Number(process.env.SLUICE_HOSTILE_SEED ?? 0xc0ffee);
const COUNT = 360;
const PARALLEL = 8;

// Two configurations the reloads alternate between. Each change is one a
// reload must carry to every loop: agent limits (budget scopes and rate
// limits), the active profile's substitution (routing), and the HTTP
// provider's connection limit (its pool identity: every loop retires its pool).
const config = (mockUrl, v) => `
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 4}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mockUrl}/v1", max_connections: ${v ? 4 : 16}}
  local: {kind: mock}
models:
  m-local: {provider: local, input: 1, output: 2}
profiles:
  main: {substitutions: {gpt-4o-mini: {to: m-local, percent: ${v ? 50 : 0}}}}
active_profile: main
budgets:
  global: {usd_per_day: ${v ? 900 : 1000}}
  run: {calls: 100000, usd: 1000}
agents:
  a: {rpm: ${v ? 100000 : 200000}, max_tokens_per_call: ${v ? 64 : 48}}
  b: {tpm: ${v ? 100000000 : 200000000}}
`;

describe(`a gateway under cross-thread load (seed ${SEED})`, () => {
  let mock, gw;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 12, tokens_per_second: 2000 });
    gw = await Gateway.start(config(mock.url, 0), { keys: { a: { agent: 'a' }, b: { agent: 'b' } } });
  });
  after(async () => { await gw?.stop(); await mock?.stop(); });

  it('answers every request and records each once while it reloads, rotates and refreshes keys', async (t) => {
    const r = seededRandom(SEED);
    const ids = [];      // request ids that must have a ledger row
    const versions = new Set();
    const failures = [];
    let next = 0;
    let done = false;

    const one = async (n) => {
      const key = r() < 0.5 ? gw.keys.a.key : gw.keys.b.key;
      const kind = r();
      const headers = r() < 0.3 ? { 'x-sluice-run': `run-${n % 7}` } : {};
      if (kind < 0.1) {
        const res = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
        if (res.status !== 200) failures.push(`models: ${res.status}`);
        await res.text();
        return;
      }
      if (kind < 0.2) {
        const res = await fetch(`${gw.url}/v1/embeddings`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ model: 'text-embedding-3-small', input: `text ${n}` }),
        });
        ids.push(res.headers.get('x-request-id'));
        if (res.status !== 200) failures.push(`embeddings ${n}: ${res.status} ${await res.text()}`);
        else await res.json();
        return;
      }
      const stream = kind < 0.6;
      const res = await chat(gw, key, {
        model: r() < 0.7 ? 'gpt-4o-mini' : 'm-local', stream, max_tokens: 16,
        messages: [{ role: 'user', content: `Say something, ${n}.` }],
      }, headers);
      ids.push(res.headers.get('x-request-id'));
      versions.add(res.headers.get('x-sluice-config-version'));
      if (res.status !== 200) {
        failures.push(`chat ${n}: ${res.status} ${await res.text()}`);
      } else if (stream) {
        const events = await readSse(res);
        if (events.at(-1) !== '[DONE]') failures.push(`chat ${n}: the stream did not end with [DONE]`);
      } else {
        await res.json();
      }
    };
    // Main thread: SIGHUP with the other configuration, written whole first.
    let reloads = 0;
    const reloader = async () => {
      for (let v = 1; !done; v ^= 1) {
        const tmp = `${gw.config}.tmp`;
        writeFileSync(tmp, config(mock.url, v).replaceAll('${DIR}', gw.dir));
        renameSync(tmp, gw.config);
        gw.child.kill('SIGHUP');
        const want = ++reloads;
        while (!done && (gw.stderr.match(/reloaded /g) ?? []).length < want) await sleep(20);
        await sleep(scaled(50));
      }
    };
    // logrotate: rename, SIGUSR1, wait until the gateway reopened by the path.
    let rotations = 0;
    const rotator = async () => {
      while (!done) {
        await sleep(scaled(120));
        if (done) break;
        renameSync(gw.usageLog, `${gw.usageLog}.${++rotations}`);
        gw.child.kill('SIGUSR1');
        while (!done && (gw.stderr.match(/reopened the usage log/g) ?? []).length < rotations) await sleep(20);
      }
    };
    // Another process creates and revokes keys; the gateway's main thread
    // (its upkeep, once a second) picks each change up and publishes a new
    // key map to the loops.
    const churned = [];
    const statusWith = async (key) => {
      const res = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
      await res.text();
      return res.status;
    };
    const until = async (key, want) => {  // the refresh runs about once a second
      for (let i = 0; i < scaled(60); i++) {
        if (await statusWith(key) === want) return true;
        await sleep(50);
      }
      return false;
    };
    const keyChurn = async () => {
      while (!done) {
        const { stdout } = await run(SLUICE, ['keys', 'create', '--config', gw.config, '--json', '--agent', 'a'], { env: gw.env });
        const created = JSON.parse(stdout);
        const accepted = await until(created.key, 200);
        await run(SLUICE, ['keys', 'revoke', '--config', gw.config, created.id], { env: gw.env });
        churned.push({ accepted, refused: await until(created.key, 401) });
      }
    };
    const readiness = async () => {
      while (!done) {
        const res = await fetch(`${gw.url}/readyz`);
        if (res.status !== 200) failures.push(`readyz: ${res.status} ${await res.text()}`);
        else await res.text();
        await sleep(25);
      }
    };

    // Until COUNT requests are done and the slower background changes have
    // each happened a few times during the traffic (or a deadline passed:
    // then the counts below fail the test).
    const deadline = Date.now() + scaled(30000);
    const enough = () => Date.now() > deadline ||
      (next >= COUNT && churned.length >= 3 && rotations >= 3 && reloads >= 4);
    const worker = async () => {
      while (!enough()) await one(next++);
    };
    const background = [reloader(), rotator(), keyChurn(), readiness()];
    try {
      await Promise.all(Array.from({ length: PARALLEL }, worker));
    } finally {
      done = true;
      await Promise.all(background);
    }

    t.diagnostic(`${ids.length} ledgered requests, ${reloads} reloads, ${rotations} rotations, ${churned.length} keys created and revoked`);
    assert.deepEqual(failures, []);
    assert.ok(reloads >= 4 && rotations >= 3 && churned.length >= 3, 'the background changes kept up');
    assert.ok(versions.size >= 2, 'requests were served under both configurations');
    assert.deepEqual(churned.filter((c) => !c.accepted || !c.refused), [], 'every new key was accepted, then refused once revoked');

    assert.equal(await gw.terminate(), 0, gw.stderr);
    const rows = new Map();
    for (const f of readdirSync(gw.dir).filter((f) => f.startsWith('usage.jsonl'))) {
      for (const line of readFileSync(join(gw.dir, f), 'utf8').split('\n').filter(Boolean)) {
        const id = JSON.parse(line).request_id;
        rows.set(id, (rows.get(id) ?? 0) + 1);
      }
    }
    const missing = ids.filter((id) => rows.get(id) !== 1);
    assert.deepEqual(missing, [], 'every request has exactly one ledger row');
  });
});

// Shutdown under load: SIGTERM while every loop has calls in flight (streams
// and not, on both providers) and new requests keep coming. The main thread
// drains, releases each loop's upstream pools (posted to the loops), stops
// the loops, saves the counters and flushes the usage writer, while the
// loops finish, settle and record their calls.
describe('a gateway stopped under cross-thread load', () => {
  it('finishes and records what was in flight on every loop, refuses the rest, exits 0', async (t) => {
    // Calls of about a second: still running when SIGTERM comes.
    const mock = await MockUpstream.start({ completion_tokens: 20, tokens_per_second: 20 });
    const gw = await Gateway.start(config(mock.url, 1), { keys: { a: { agent: 'a' } } });
    try {
      const call = (n) => chat(gw, gw.keys.a.key, {
        model: n % 3 ? 'gpt-4o-mini' : 'm-local', stream: n % 2 === 0, max_tokens: 20,
        messages: [{ role: 'user', content: `Count to twenty, ${n}.` }],
      }).then(async (res) => ({ status: res.status, id: res.headers.get('x-request-id'), body: await res.text() }));
      const first = Array.from({ length: 24 }, (_, n) => call(n));
      await sleep(scaled(200));
      const exited = gw.terminate();
      // Late arrivals: refused with a retryable 503 while draining, or not
      // connected at all once the listeners are closed.
      const late = [];
      for (let n = 0; n < 10; n++) {
        late.push(await call(100 + n).catch(() => null));
        await sleep(20);
      }
      const answered = [...await Promise.all(first), ...late.filter(Boolean)];
      assert.equal(await exited, 0, gw.stderr);
      const served = answered.filter((d) => d.status === 200);
      t.diagnostic(`${served.length} calls finished during the drain, ${answered.length - served.length} refused`);
      assert.deepEqual(answered.filter((d) => d.status !== 200 && d.status !== 503).map((d) => `${d.status} ${d.body}`), []);
      assert.ok(served.length >= 12, 'most of the first calls were in flight, not refused');
      const rows = new Set((await gw.usage()).map((r) => r.request_id));
      assert.deepEqual(served.filter((d) => !rows.has(d.id)).map((d) => d.id), [], 'every call served has its row');
    } finally {
      await gw.stop();
      await mock.stop();
    }
  });
});
