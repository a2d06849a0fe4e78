// Regenerates tests/data/token_samples.json: each sample text with its real
// token count under OpenAI's o200k_base (gpt-4o, gpt-4.1, o-series, gpt-5)
// and cl100k_base (gpt-4, gpt-3.5) encodings, from the `gpt-tokenizer` package.
//
//   cd tools/token_samples && npm install && node generate.mjs
//
// Output format (read by tests/core/token_estimate_test.cpp without a JSON
// library): a JSON array with exactly one sample object per line, keys in the
// fixed order name, o200k, cl100k, bytes, text. The text is a JSON string
// (JSON.stringify escaping), so the file stays valid JSON for other tools.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { samples } from './samples.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, '../../tests/data/token_samples.json');

const names = new Set();
const lines = samples.map(({ name, text }) => {
  if (names.has(name)) throw new Error(`duplicate sample name ${name}`);
  names.add(name);
  // Special-token text would be encoded as plain text by providers; never
  // let the tokenizer treat it as a control token.
  const opts = { disallowedSpecial: new Set(), allowedSpecial: new Set() };
  const row = {
    name,
    o200k: o200k(text, opts),
    cl100k: cl100k(text, opts),
    bytes: Buffer.byteLength(text, 'utf8'),
    text,
  };
  return JSON.stringify(row);
});
fs.writeFileSync(out, `[\n${lines.join(',\n')}\n]\n`);
console.log(`wrote ${lines.length} samples to ${path.relative(process.cwd(), out)}`);
