// Prints a chat completion request whose user message is about SIZE_KB
// kilobytes of the text agents send: prose, code and JSON in turns (the same
// bytes every run, so runs compare). Used by bench/load.sh for the
// prompt-size rows: node bench/make_prompt.mjs 16 > body.json
const kb = Number(process.argv[2] ?? 1);
const prose = 'The support agent reads the customer\'s message, looks up the order and the shipping history, ' +
  'and drafts a short answer that explains what happened and what will be done next. ';
const code = 'function refund(order, reason) {\n  if (!order.paid) return { ok: false, error: "unpaid" };\n' +
  '  const amount = order.items.reduce((s, i) => s + i.price * i.qty, 0);\n  return { ok: true, amount, reason };\n}\n';
const json = JSON.stringify({ order: 1234, items: [{ sku: 'A-17', qty: 2, price: 19.99 }, { sku: 'B-3', qty: 1, price: 5.5 }],
  status: 'damaged', events: ['created', 'paid', 'shipped', 'delivered'] }) + '\n';
const parts = [prose, code, json];
let text = '';
for (let i = 0; text.length < kb * 1024; ++i) text += parts[i % 3];
text = text.slice(0, kb * 1024);
process.stdout.write(JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'system', content: 'You are a support agent.' }, { role: 'user', content: text }],
  max_tokens: 16,
}));
