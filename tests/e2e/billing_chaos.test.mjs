// The ledger against the provider's bill under chaos: many concurrent calls,
// streaming and not, while the provider injects 5xx answers, resets mid-body,
// stalls and paces tokens, and clients give up at random moments. Whatever
// the exit path (success, retry, fallback, reset, stall, client abort before
// or during the answer), the gateway must never bill less than the provider
// charged, nor much more (its own estimates fill in where the provider's
// usage never arrived), and every answered request has its row.
//
// Deterministic choices (SLUICE_HOSTILE_SEED); the provider's own faults come
// from its seeded generator.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MockUpstream, Gateway, seededRandom, sleep } from './harness.mjs';

const SEED = Number(process.env.SLUICE_HOSTILE_SEED ?? 0xb111);
const COUNT = 160;
const PARALLEL = 12;


describe(`ledger vs provider bill under chaos (seed ${SEED})`, () => {
  let mock, gw, key;
  before(async () => {
    mock = await MockUpstream.start({
      completion_tokens: 30, tokens_per_second: 300, error_rate_500: 0.1, reset_mid_stream_rate: 0.15,
      reset_after_chunks: 4, stall_rate: 0.05, stall_after_chunks: 3, seed: SEED,
    });
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 2}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  openai: {base_url: "${mock.url}/v1", first_byte_timeout_ms: 400, idle_timeout_ms: 400, timeout_ms: 2000}
resilience: {retries: {max: 1, base_ms: 1, max_ms: 5}, breaker: {failures: 1000, open_ms: 1}}
agents:
  bot: {max_tokens_per_call: 40, rpm: 100000000}
`, { keys: { b: { agent: 'bot' } } });
    key = gw.keys.b.key;
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('never bills less than the provider charged, and not much more', async (t) => {
    const r = seededRandom(SEED);
    const answered = new Set();
    const outcomes = {};
    let next = 0;
    const worker = async () => {
      while (next < COUNT) {
        const n = next++;
        const stream = r() < 0.6;
        const abortAfter = r() < 0.3 ? Math.floor(r() * 150) : -1;
        const ctl = new AbortController();
        const timer = abortAfter >= 0 ? setTimeout(() => ctl.abort(), abortAfter) : null;
        let how;
        try {
          const res = await fetch(`${gw.url}/v1/chat/completions`, {
            method: 'POST', signal: ctl.signal,
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: `Tell me something, ${n}.` }] }),
          });
          answered.add(res.headers.get('x-request-id'));
          await res.text();
          how = `${res.status}`;
        } catch {
          how = 'aborted';
        } finally {
          if (timer) clearTimeout(timer);
        }
        outcomes[how] = (outcomes[how] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    // Streams the clients left are cancelled upstream; let the provider's
    // books settle, then stop the gateway so its log is complete.
    await sleep(600);
    const code = await gw.terminate();
    assert.equal(code, 0, gw.stderr.slice(-2000));
    const bill = (await mock.bill()).models['gpt-4o-mini'];
    const rows = (await gw.usage()).filter((row) => row.requested_model === 'gpt-4o-mini');
    const ids = new Set(rows.map((row) => row.request_id));
    const missing = [...answered].filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], 'every answered request has a usage row');
    const sum = (f) => rows.reduce((s, row) => s + row[f], 0);
    const ledgerIn = sum('input_tokens');
    const ledgerOut = sum('output_tokens');
    const sources = {};
    for (const row of rows) for (const a of row.attempts) sources[`${a.usage_source}:${a.error || 'ok'}`] = (sources[`${a.usage_source}:${a.error || 'ok'}`] ?? 0) + 1;
    t.diagnostic(`clients ${JSON.stringify(outcomes)}; rows ${rows.length}; attempts ${JSON.stringify(sources)}`);
    t.diagnostic(`provider: ${bill.requests} billed calls, ${bill.prompt_tokens} in, ${bill.completion_tokens} out; ledger: ${ledgerIn} in, ${ledgerOut} out`);
    assert.ok(bill.completion_tokens > 0 && bill.requests > COUNT / 4, 'the provider served a good share');
    assert.ok(ledgerOut >= bill.completion_tokens, `ledger output ${ledgerOut} < provider's ${bill.completion_tokens}`);
    assert.ok(ledgerIn >= bill.prompt_tokens, `ledger input ${ledgerIn} < provider's ${bill.prompt_tokens}`);
    // Estimates (cut streams, cut bodies) may exceed what the provider
    // charged, within reason.
    assert.ok(ledgerOut <= bill.completion_tokens * 1.5 + 100, `ledger output ${ledgerOut} far above the provider's ${bill.completion_tokens}`);
    assert.ok(ledgerIn <= bill.prompt_tokens * 1.5 + 100, `ledger input ${ledgerIn} far above the provider's ${bill.prompt_tokens}`);
  });
});
