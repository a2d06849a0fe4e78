// End-to-end: the official `openai` npm SDK as the client, unchanged apart
// from baseURL and apiKey, against `sluice serve` with the built-in offline
// provider (kind: mock).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Gateway } from './harness.mjs';

// Counts the HTTP attempts the SDK makes (its retries included).
function countingFetch() {
  const f = async (url, init) => { f.calls += 1; return fetch(url, init); };
  f.calls = 0;
  return f;
}

describe('openai SDK against sluice', () => {
  let gw;
  before(async () => {
    gw = await Gateway.start(`
server: {listen: "127.0.0.1:0", usage_log: "\${DIR}/usage.jsonl", threads: 2}
storage: {state: "sqlite:\${DIR}/state.db", ledger: "sqlite:\${DIR}/state.db"}
providers:
  demo: {kind: mock}
models:
  gpt-4o-mini: {provider: demo}
  text-embedding-3-small: {provider: demo}
budgets:
  on_short_budget: reject
agents:
  bot: {max_tokens_per_call: 200}
  broke: {usd_per_day: 0.000001}
  slow: {rpm: 20}
`, { keys: { bot: { agent: 'bot' }, broke: { agent: 'broke' }, slow: { agent: 'slow' } } });
  });
  after(async () => { await gw?.stop(); });

  const client = (name, opts = {}) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.keys[name].key, ...opts });

  it('creates a chat completion', async () => {
    const { data, response } = await client('bot').chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 16 })
      .withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices[0].message.role, 'assistant');
    assert.ok(data.choices[0].message.content.length > 0);
    assert.ok(data.usage.completion_tokens > 0 && data.usage.completion_tokens <= 16);
    assert.equal(response.headers.get('x-sluice-served-model'), 'gpt-4o-mini');
    assert.ok(data._request_id?.startsWith('req_'));
  });

  it('streams without include_usage (no usage chunk reaches the SDK)', async () => {
    const stream = await client('bot').chat.completions.create({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream please' }], max_tokens: 10, stream: true,
    });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      assert.ok(!chunk.usage, 'usage must not reach a client that did not ask for it');
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.ok(chunks >= 3);
    assert.ok(text.length > 0);
    // The stream helper checks role and finish_reason of every choice.
    const helper = client('bot').chat.completions.stream({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'again' }], max_tokens: 5,
    });
    const final = await helper.finalChatCompletion();
    assert.ok(final.choices[0].finish_reason);
  });

  it('streams with include_usage (usage chunk arrives last)', async () => {
    const stream = await client('bot').chat.completions.create({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream please' }], max_tokens: 7, stream: true,
      stream_options: { include_usage: true },
    });
    let last;
    for await (const chunk of stream) last = chunk;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 7);
  });

  it('does not retry an exhausted budget', async () => {
    const f = countingFetch();
    await assert.rejects(
      client('broke', { fetch: f, maxRetries: 3 }).chat.completions.create({
        model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 50,
      }),
      (err) => {
        assert.equal(err.status, 429);
        assert.equal(err.code, 'insufficient_quota');
        assert.equal(err.type, 'insufficient_quota');
        return true;
      });
    assert.equal(f.calls, 1, 'x-should-retry: false stops the SDK');
  });

  it('retries a rate limit after retry-after and succeeds', async () => {
    const slow = client('slow');
    for (let i = 0; i < 20; i++) {
      await slow.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `${i}` }], max_tokens: 1 });
    }
    const f = countingFetch();
    const started = Date.now();
    const res = await client('slow', { fetch: f, maxRetries: 2 }).chat.completions.create({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one more' }], max_tokens: 1,
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(f.calls, 2, 'one 429, then a successful retry');
    assert.ok(Date.now() - started >= 1000, 'the SDK waited for retry-after');
  });

  it('creates embeddings (the SDK asks for base64 and decodes it)', async () => {
    const res = await client('bot').embeddings.create({ model: 'text-embedding-3-small', input: ['hello', 'world'] });
    assert.equal(res.data.length, 2);
    assert.ok(Array.isArray(res.data[0].embedding));
    assert.ok(res.data[0].embedding.length > 0);
    assert.ok(res.data[0].embedding.every((x) => Number.isFinite(x)));
    assert.ok(res.usage.prompt_tokens > 0);
  });

  it('lists models', async () => {
    const ids = [];
    for await (const m of client('bot').models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['gpt-4o-mini', 'text-embedding-3-small']);
    const one = await client('bot').models.retrieve('gpt-4o-mini');
    assert.equal(one.id, 'gpt-4o-mini');
  });
});
