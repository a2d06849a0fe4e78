// GET /metrics on a real `sluice serve`: behind the admin key (404 with none
// configured, 401 with a wrong one), or public with server.metrics_public;
// the counters follow real traffic; labels are config names only; and the
// output passes `promtool check metrics` (Debian's prometheus package).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MockUpstream, Gateway, chat } from './harness.mjs';

const ADMIN = 'admin-secret-for-tests-0123456789';

const config = (base, extra = '') => `
server: {listen: "127.0.0.1:0", threads: 2${extra}}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/ledger.db"}
providers:
  openai: {base_url: "${base}/v1"}
agents:
  drafter: {usd_per_day: 5, rpm: 1000}
  checker: {}
`;

const metrics = (gw, key) => fetch(`${gw.url}/metrics`, key ? { headers: { authorization: `Bearer ${key}` } } : {});

// The value of one sample line ("name{labels} value"), or undefined.
function sample(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = line.match(/^([a-z_]+)(\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

describe('metrics', () => {
  let mock, gw, open, drafter, checker;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 7 });
    gw = await Gateway.start(config(mock.url), {
      env: { SLUICE_ADMIN_KEY: ADMIN },
      keys: { d: { agent: 'drafter' }, c: { agent: 'checker' } },
    });
    drafter = gw.keys.d.key;
    checker = gw.keys.c.key;
  });
  after(async () => { await gw?.stop(); await open?.stop(); mock?.stop(); });

  it('needs the admin key', async () => {
    assert.equal((await metrics(gw)).status, 401);
    assert.equal((await metrics(gw, 'wrong')).status, 401);
    assert.equal((await metrics(gw, drafter)).status, 401);  // a virtual key is not the admin key
    const ok = await metrics(gw, ADMIN);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  });

  it('counts real traffic under config names only, and passes promtool', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await chat(gw, drafter, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 });
      assert.equal(r.status, 200);
      await r.text();
    }
    const s = await chat(gw, checker, { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    await s.text();
    // A model nobody serves: a name from the request, never a label.
    const bad = await chat(gw, checker, { model: 'made-up-model-\u{1F600}', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(bad.status, 404);
    await bad.text();

    const text = await (await metrics(gw, ADMIN)).text();
    assert.equal(sample(text, 'sluice_requests_total', { agent: 'drafter', model: 'gpt-4o-mini', provider: 'openai', outcome: 'ok' }), 3);
    assert.equal(sample(text, 'sluice_requests_total', { agent: 'checker', model: '', provider: '', outcome: 'rejected_invalid' }), 1);
    assert.equal(sample(text, 'sluice_tokens_total', { agent: 'drafter', model: 'gpt-4o-mini', kind: 'output' }), 21);
    assert.ok(sample(text, 'sluice_cost_usd_total', { agent: 'drafter', model: 'gpt-4o-mini' }) > 0);
    assert.equal(sample(text, 'sluice_upstream_attempts_total', { provider: 'openai', model: 'gpt-4o-mini', result: 'ok' }), 4);
    assert.equal(sample(text, 'sluice_request_duration_seconds_count'), 5);
    assert.equal(sample(text, 'sluice_time_to_first_token_seconds_count'), 1);
    assert.equal(sample(text, 'sluice_breaker_state', { provider: 'openai', model: 'gpt-4o-mini' }), 0);
    assert.ok(sample(text, 'sluice_budget_spent_usd', { scope: 'agent:drafter', window: 'day' }) > 0);
    assert.equal(sample(text, 'sluice_budget_limit_usd', { scope: 'agent:drafter', window: 'day' }), 5);
    assert.equal(sample(text, 'sluice_build_info', { version: '0.1.0' }), 1);
    assert.ok(!text.includes('made-up-model'), 'a request field became a label');
    assert.ok(!text.includes(ADMIN) && !text.includes(drafter), 'key material in the metrics');

    const check = spawnSync('promtool', ['check', 'metrics'], { input: text });
    assert.equal(check.error, undefined, 'promtool is missing: run scripts/setup.sh');
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  });

  it('is off without an admin key, and public when the config says so', async () => {
    const env = { SLUICE_ADMIN_KEY: '' };
    const off = await Gateway.start(config(mock.url), { env });
    try {
      assert.equal((await metrics(off)).status, 404);
      assert.equal((await metrics(off, 'anything')).status, 404);
    } finally {
      await off.stop();
    }
    open = await Gateway.start(config(mock.url, ', metrics_public: true'), { env });
    const r = await metrics(open);
    assert.equal(r.status, 200);
    assert.equal(spawnSync('promtool', ['check', 'metrics'], { input: await r.text() }).status, 0);
  });
});
