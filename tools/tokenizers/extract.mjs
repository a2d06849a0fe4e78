// Writes OpenAI's BPE rank files into data/tokenizers/ (and their SHA-256
// sums into data/tokenizers/SHA256SUMS), so a clone of Sluice needs no npm
// to count tokens:
//
//   cd tools/tokenizers && npm ci && node extract.mjs
//
// Source: the npm package `tiktoken` (pinned in package-lock.json), the WASM
// build of OpenAI's own Rust tokenizer core (github.com/dqbd/tiktoken). It is
// the authoritative choice: the differential test (corpus.mjs) counts with
// the same package's BPE core, and its `encoders/<enc>.json` holds the ranks
// OpenAI publishes at openaipublic.blob.core.windows.net/encodings/
// <enc>.tiktoken, compressed as `! <first rank> <base64> <base64> ...` runs.
// The files written here are rebuilt in OpenAI's own format (one
// `<base64 of the token's bytes> <rank>` line per token, by rank) and must
// hash to the SHA-256 OpenAI's tiktoken expects for them
// (tiktoken_ext/openai_public.py, `expected_hash`); anything else is refused.
// src/tokenizer/registry.cpp compiles the same hashes in, and refuses a file
// that does not match them at load.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, '../../data/tokenizers');

// tiktoken_ext/openai_public.py (tiktoken 0.9-0.12), expected_hash.
const PUBLISHED_SHA256 = {
  cl100k_base: '223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7',
  o200k_base: '446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d',
};

// `! <rank> tok tok ...`: the tokens that follow get consecutive ranks from <rank>.
function ranksFile(bpeRanks) {
  const words = bpeRanks.split(/\s+/).filter((w) => w.length > 0);
  const lines = [];
  let rank = -1;
  for (let i = 0; i < words.length; ++i) {
    if (words[i] === '!') {
      rank = Number(words[++i]);
      if (!Number.isInteger(rank) || rank < 0) throw new Error(`bad rank offset ${words[i]}`);
      continue;
    }
    if (rank < 0) throw new Error('bpe_ranks does not start with a rank offset');
    lines.push(`${words[i]} ${rank++}\n`);
  }
  return lines.join('');
}

fs.mkdirSync(outDir, { recursive: true });
const sums = [];
for (const [name, sha] of Object.entries(PUBLISHED_SHA256)) {
  const { bpe_ranks } = require(`tiktoken/encoders/${name}.json`);
  const text = ranksFile(bpe_ranks);
  const got = crypto.createHash('sha256').update(text).digest('hex');
  if (got !== sha) throw new Error(`${name}: rebuilt rank file hashes to ${got}, OpenAI publishes ${sha}`);
  fs.writeFileSync(path.join(outDir, `${name}.tiktoken`), text);
  sums.push(`${sha}  ${name}.tiktoken\n`);
  console.log(`wrote data/tokenizers/${name}.tiktoken (${text.length} bytes, sha256 ${sha})`);
}
fs.writeFileSync(path.join(outDir, 'SHA256SUMS'), sums.sort().join(''));
