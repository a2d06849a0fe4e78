// Starts real `sluice mock-upstream` and `sluice serve` processes on loopback
// ports and stops exactly the processes it started (by PID).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const SLUICE = process.env.SLUICE_BIN ?? resolve(import.meta.dirname, '../../build/release/src/app/sluice');

// Waits and deadlines of the suites are multiplied by SLUICE_TEST_TIME_SCALE
// (default 1): a sanitizer build of SLUICE_BIN runs several times slower
// (scripts/tsan.sh sets 4 for ThreadSanitizer).
export const TIME_SCALE = Math.max(1, Number(process.env.SLUICE_TEST_TIME_SCALE ?? 1) || 1);
export const scaled = (ms) => Math.round(ms * TIME_SCALE);

// A sanitizer build (scripts/test.sh's ASan run, scripts/tsan.sh) writes its
// report to the process's stderr and exits (halt_on_error). A test may never
// look at that process again (mock.stop(), after hooks), so every server
// process started here is watched: a report fails this test file (the test
// runner sees its exit code) and is printed in full.
const SANITIZER_REPORT = /WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|: runtime error: /;
function watchForSanitizerReports(child, what) {
  let text = '';
  child.stderr.on('data', (b) => { text += b.toString(); });
  child.on('close', (code, signal) => {  // after 'exit', once stderr is read to its end
    if (!SANITIZER_REPORT.test(text)) return;
    process.exitCode = 1;
    process.stderr.write(`\n==== ${what} (pid ${child.pid}) exited with ${code ?? signal} after a sanitizer report; its stderr:\n${text}\n====\n`);
  });
}

function waitForLine(child, pattern, what, timeoutMs = scaled(20000)) {
  return new Promise((resolveP, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${out}`)), timeoutMs);
    const onData = (buf) => {
      out += buf.toString();
      const m = out.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolveP(m);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (b) => { out += b.toString(); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited with ${code}: ${out}`)); });
  });
}

export class MockUpstream {
  static async start(knobs = {}) {
    const args = ['mock-upstream', '--port', '0'];
    for (const [k, v] of Object.entries(knobs)) args.push('--set', `${k}=${v}`);
    const child = spawn(SLUICE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    watchForSanitizerReports(child, 'sluice mock-upstream');
    const m = await waitForLine(child, /listening on [\d.]+:(\d+)/, 'mock-upstream');
    const mu = new MockUpstream();
    mu.child = child;
    mu.port = Number(m[1]);
    mu.url = `http://127.0.0.1:${mu.port}`;
    return mu;
  }
  async bill() { return (await fetch(`${this.url}/mock/bill`)).json(); }
  async configure(knobs) {
    const r = await fetch(`${this.url}/mock/config`, { method: 'POST', body: JSON.stringify(knobs), headers: { 'content-type': 'application/json' } });
    if (!r.ok) throw new Error(`mock config failed: ${r.status} ${await r.text()}`);
  }
  async reset() { await fetch(`${this.url}/mock/reset`, { method: 'POST' }); }
  // Sends SIGTERM; the promise resolves with the exit code (awaiting it is optional).
  stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve(this.child.exitCode);
    const exited = new Promise((r) => this.child.on('exit', (c) => r(c)));
    this.child.kill('SIGTERM');
    return exited;
  }
}

export class Gateway {
  // yaml: config text with ${MOCK} replaced by the mock upstream's base URL.
  // keys: {name: {agent, pipeline, actsFor}} created before the server starts
  // (a running gateway picks up new keys within a second).
  static async start(yaml, { env = {}, keys = {} } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
    const cfgPath = join(dir, 'sluice.yaml');
    const text = yaml.replaceAll('${DIR}', dir);
    writeFileSync(cfgPath, text);
    const gw = new Gateway();
    gw.dir = dir;
    gw.config = cfgPath;
    gw.usageLog = join(dir, 'usage.jsonl');
    gw.env = { ...process.env, ...env };
    gw.keys = {};
    for (const [name, spec] of Object.entries(keys)) gw.keys[name] = gw.createKey(spec.agent, spec);
    await gw.spawn();
    return gw;
  }
  async spawn() {
    this.child = spawn(SLUICE, ['serve', '--config', this.config], { stdio: ['ignore', 'pipe', 'pipe'], env: this.env });
    this.stderr = '';
    this.child.stderr.on('data', (b) => { this.stderr += b.toString(); });
    watchForSanitizerReports(this.child, 'sluice serve');
    const m = await waitForLine(this.child, /listening on http:\/\/([\d.]+):(\d+)/, 'sluice serve');
    this.port = Number(m[2]);
    this.url = `http://127.0.0.1:${this.port}`;
  }
  // Stops the process gracefully and starts it again on the same files.
  async restart() {
    const exited = new Promise((r) => this.child.on('exit', (c) => r(c)));
    this.child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) throw new Error(`sluice serve exited with ${code}: ${this.stderr}`);
    await this.spawn();
  }
  createKey(agent, { pipeline = false, actsFor = [] } = {}) {
    const args = ['keys', 'create', '--config', this.config, '--json'];
    if (agent) args.push('--agent', agent);
    if (pipeline) args.push('--pipeline', '--acts-for', actsFor.join(','));
    const out = execFileSync(SLUICE, args, { env: this.env }).toString();
    return JSON.parse(out);
  }
  revokeKey(id) { execFileSync(SLUICE, ['keys', 'revoke', '--config', this.config, id], { env: this.env }); }
  // Every usage record written so far (waits for the background writer).
  async usage({ minCount = 0, timeoutMs = 5000 } = {}) {
    const deadline = Date.now() + scaled(timeoutMs);
    for (;;) {
      const rows = existsSync(this.usageLog)
        ? readFileSync(this.usageLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
      if (rows.length >= minCount || Date.now() > deadline) return rows;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  // The usage row of one request, waiting for the background writer.
  async row(requestId, timeoutMs = 5000) {
    const deadline = Date.now() + scaled(timeoutMs);
    for (;;) {
      const found = (await this.usage()).find((r) => r.request_id === requestId);
      if (found || Date.now() > deadline) return found;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  // Kills the process hard (SIGKILL, as a crash or the OOM killer would),
  // waiting for it to be gone; spawn() starts it again on the same files.
  async kill9() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.on('exit', () => r()));
    this.child.kill('SIGKILL');
    await exited;
  }
  // Stops the process gracefully (SIGTERM: drain, flush the usage log) and
  // returns its exit code; the files stay for reading.
  async terminate() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise((r) => this.child.on('exit', (c) => r(c)));
    this.child.kill('SIGTERM');
    return exited;
  }
  async stop() {
    const code = await this.terminate();
    rmSync(this.dir, { recursive: true, force: true });
    return code;
  }
}

// Runs SQL on a SQLite file (the ledger, the state store) with Debian's
// sqlite3 CLI (scripts/setup.sh installs it); the rows as objects.
export function sqlite(path, sql) {
  const out = execFileSync('sqlite3', ['-json', path, sql]).toString().trim();
  return out ? JSON.parse(out) : [];
}

export function chat(gw, key, body, headers = {}, signal = undefined) {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    signal,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

// Reads an SSE response into a list of parsed data payloads ('[DONE]' kept as a string).
export async function readSse(res) {
  const text = await res.text();
  const events = [];
  for (const block of text.split('\n\n')) {
    const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    if (!data) continue;
    events.push(data === '[DONE]' ? data : JSON.parse(data));
  }
  return events;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A seeded generator of numbers in [0, 1) (mulberry32): the hostile suites
// draw their mutations from it, so a failure replays from its seed.
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
