// The quick start config (examples/quickstart.yaml) against `sluice
// mock-upstream`: a few calls through the gateway, then `sluice report`,
// `sluice export` and `sluice roi` on its ledger agree with the provider's
// bill; `sluice import` of the usage-log mirror adds nothing (the rows are
// the gateway's own).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Gateway, MockUpstream, SLUICE, chat, sleep, sqlite } from './harness.mjs';

const root = resolve(import.meta.dirname, '../..');

function quickstart(mock) {
  return readFileSync(join(root, 'examples', 'quickstart.yaml'), 'utf8')
    .replace(/listen: "127\.0\.0\.1:4000"/, 'listen: "127.0.0.1:0"')
    .replace(/usage_log: sluice-usage\.jsonl/, 'usage_log: "${DIR}/usage.jsonl"')
    .replace(/state: "sqlite:sluice\.db"/, 'state: "sqlite:${DIR}/sluice.db"')
    .replace(/ledger: "sqlite:sluice-ledger\.db"/, 'ledger: "sqlite:${DIR}/ledger.db"')
    .replace(/demo: \{kind: mock\}/, `demo: {base_url: "${mock.url}/v1"}`);
}

const sluice = (...args) => spawnSync(SLUICE, args, { encoding: 'utf8' });

describe('reports on the quick start ledger', () => {
  let mock, gw;
  before(async () => {
    mock = await MockUpstream.start({ completion_tokens: 30 });
    gw = await Gateway.start(quickstart(mock), { keys: { drafter: { agent: 'drafter' }, reviewer: { agent: 'reviewer' } } });
    const calls = [
      [gw.keys.drafter.key, 'gpt-4.1'], [gw.keys.drafter.key, 'gpt-4.1'], [gw.keys.drafter.key, 'deepseek-v3.2'],
      [gw.keys.reviewer.key, 'gpt-4.1-mini'], [gw.keys.reviewer.key, 'gpt-4o'],  // gpt-4o: not allowed, rejected
    ];
    for (const [key, model] of calls) {
      const r = await chat(gw, key, { model, messages: [{ role: 'user', content: 'Where is my parcel?' }], max_tokens: 50 });
      await r.text();
    }
    assert.equal(await gw.terminate(), 0, gw.stderr);  // flushes the ledger
  });
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('report shows the calls, their tokens and cost, as the provider billed them', async () => {
    const r = sluice('report', '--config', gw.config, '--by', 'agent,model', '--format', 'json');
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(r.stdout);
    const bill = await mock.bill();
    const billed = Object.values(bill.models);
    assert.equal(rep.total.calls, 5);
    assert.equal(rep.total.rejected, 1);
    assert.equal(rep.total.input_tokens, billed.reduce((s, m) => s + m.prompt_tokens, 0));
    assert.equal(rep.total.output_tokens, billed.reduce((s, m) => s + m.completion_tokens, 0));
    const drafter = rep.groups.find((g) => g.agent === 'drafter' && g.model === 'gpt-4.1');
    assert.equal(drafter.calls, 2);
    assert.equal(drafter.output_tokens, 60);
    assert.ok(drafter.latency_p50_us > 0);
    // Cost: the catalog's gpt-4.1 price of the billed tokens, per request rounded up.
    const [sum] = JSON.parse(execFileSync('sqlite3', ['-json', join(gw.dir, 'ledger.db'),
      'SELECT sum(cost_micro_usd) AS c FROM requests']).toString());
    assert.equal(rep.total.cost_micro_usd, sum.c);
    const table = sluice('report', '--config', gw.config, '--by', 'agent');
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^drafter\s+3\s/m);
    assert.match(table.stdout, /^reviewer\s+2\s.*1 \(invalid 1\)/m);
    assert.match(table.stdout, /^TOTAL\s+5\s/m);
  });

  it('export streams every row; import of the usage log adds nothing', () => {
    const csv = sluice('export', '--config', gw.config, '--format', 'csv', '--agent', 'drafter');
    assert.equal(csv.status, 0, csv.stderr);
    assert.equal(csv.stdout.trim().split('\n').length, 1 + 3);
    const imp = sluice('import', '--config', gw.config, join(gw.dir, 'usage.jsonl'));
    assert.equal(imp.status, 0, imp.stderr);
    assert.match(imp.stdout, /sluice-jsonl \(imported\), 5 row\(s\) read, 0 added, 5 already imported, 0 bad/);
  });

  it('roi projects the drafter’s gpt-4.1 traffic at deepseek-v3.2 prices', () => {
    const r = sluice('roi', '--config', gw.config, '--map', 'gpt-4.1=deepseek-v3.2', '--since', '1d', '--explain');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^drafter\s+gpt-4\.1\s+deepseek-v3\.2\s+2\s/m);
    assert.match(r.stdout, /Monthly = the period's figure × 30 d \/ 1 d\./);
    assert.match(r.stdout, /at deepseek-v3\.2's price/);
  });
});

describe('storage.ledger_retention_days', () => {
  let mock, gw;
  after(async () => { await gw?.stop(); mock?.stop(); });

  it('serve prunes rows past the retention in the background, never this month\'s', async () => {
    mock = await MockUpstream.start({});
    const yaml = quickstart(mock).replace(/(ledger: "sqlite:\$\{DIR\}\/ledger\.db")/, '$1\n  ledger_retention_days: 1');
    assert.match(yaml, /ledger_retention_days: 1/);
    // Rows brought in before the gateway starts: two from 2020, one now.
    gw = await Gateway.start(yaml, { keys: { drafter: { agent: 'drafter' } } });
    const file = `${gw.dir}/old.json`;
    const now = Math.floor(Date.now() / 1000);
    writeFileSync(file, JSON.stringify({ summary: {}, entries: [
      { timestamp: '2020-01-05T10:00:00Z', agent_name: 'drafter', model: 'gpt-4.1', input_tokens: 10, output_tokens: 5 },
      { timestamp: '2020-02-05T10:00:00Z', agent_name: 'drafter', model: 'gpt-4.1', input_tokens: 10, output_tokens: 5 },
      { timestamp: now, agent_name: 'drafter', model: 'gpt-4.1', input_tokens: 10, output_tokens: 5 },
    ] }));
    const imp = sluice('import', '--config', gw.config, file);
    assert.equal(imp.status, 0, imp.stderr);
    const ledger = `${gw.dir}/ledger.db`;
    assert.equal(sqlite(ledger, 'SELECT count(*) AS n FROM requests')[0].n, 3);
    // The first pass runs ~5 s after start, from the one-second upkeep.
    let left;
    for (let i = 0; i < 40; ++i) {
      left = sqlite(ledger, 'SELECT count(*) AS n, min(started_unix_ms) AS first FROM requests')[0];
      if (left.n === 1) break;
      await sleep(250);
    }
    assert.equal(left.n, 1, gw.stderr);
    assert.equal(left.first, now * 1000);
    assert.equal(sqlite(ledger, 'SELECT count(*) AS n FROM attempts')[0].n, 1);
    assert.equal(sqlite(ledger, 'SELECT count(*) AS n FROM spend_by_minute WHERE minute < 27000000')[0].n, 0);  // before 2021-05
    assert.equal(await gw.terminate(), 0, gw.stderr);
    assert.match(gw.stderr, /ledger retention \(1 days\): pruned 2 request\(s\) and 2 per-minute sum\(s\)/);
  });
});
