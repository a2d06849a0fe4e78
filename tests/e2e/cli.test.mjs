// The CLI as a user runs it: `sluice check` on the shipped examples and on a
// broken file, and the keys commands.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SLUICE } from './harness.mjs';

const root = resolve(import.meta.dirname, '../..');
const run = (...args) => spawnSync(SLUICE, args, { encoding: 'utf8' });

describe('sluice check', () => {
  for (const example of ['quickstart', 'migration']) {
    it(`accepts examples/${example}.yaml`, () => {
      const r = run('check', '--config', join(root, 'examples', `${example}.yaml`));
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /: ok/);
      assert.match(r.stdout, /agents \(\d+\)/);
    });
  }

  it('answers a broken file with every error at file:line:column', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-check-'));
    const path = join(dir, 'broken.yaml');
    writeFileSync(path, [
      'server: {listen: "127.0.0.1:4000"}',
      'providers:',
      '  demo: {kind: mock}',
      'budgets:',
      '  global: {usd_per_dya: 10}',
      '  tiers: {fast: {share: 0.7}, slow: {share: 0.6}}',
      'agents:',
      '  a: {tier: medium, rpm: -1}',
      '',
    ].join('\n'));
    const r = run('check', '--config', path);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.ok(lines.some((l) => /broken\.yaml:5:\d+: .*usd_per_dya.*did you mean 'usd_per_day'/.test(l)), r.stderr);
    assert.ok(lines.some((l) => /broken\.yaml:6:\d+: .*shares?.*1\.0/i.test(l)), r.stderr);
    assert.ok(lines.some((l) => /broken\.yaml:8:\d+: .*medium/.test(l)), r.stderr);
    assert.ok(lines.some((l) => /broken\.yaml:8:\d+: .*rpm/.test(l)), r.stderr);
  });
});

describe('sluice keys', () => {
  it('creates, lists and revokes keys without ever listing a secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-keys-'));
    const cfg = join(dir, 'k.yaml');
    writeFileSync(cfg, `providers: {demo: {kind: mock}}\nstorage: {state: "sqlite:${dir}/s.db", ledger: "sqlite:${dir}/s.db"}\nagents: {a: {}, b: {}}\n`);
    const created = run('keys', 'create', '--config', cfg, '--agent', 'a');
    assert.equal(created.status, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^sk-sluice-[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
    const listed = run('keys', 'list', '--config', cfg, '--json');
    const keys = JSON.parse(listed.stdout);
    assert.equal(keys.length, 1);
    assert.equal(keys[0].agent, 'a');
    // The secret is everything after the first '_' (its alphabet has '_' too).
    const secret = key.slice(key.indexOf('_') + 1);
    assert.equal(secret.length, 43);
    assert.ok(!listed.stdout.includes(secret));
    assert.equal(run('keys', 'create', '--config', cfg, '--agent', 'nobody').status, 1);
    assert.equal(run('keys', 'revoke', '--config', cfg, keys[0].id).status, 0);
    assert.equal(JSON.parse(run('keys', 'list', '--config', cfg, '--json').stdout)[0].revoked_unix > 0, true);
    assert.equal(run('keys', 'revoke', '--config', cfg, 'nosuchkeyid').status, 1);
    rmSync(dir, { recursive: true, force: true });
  });
});
