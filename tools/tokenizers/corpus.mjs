// The differential test's corpus and its reference token counts:
//
//   node corpus.mjs OUT_DIR        (tools/tokenizers/differential.sh runs it)
//
// writes into OUT_DIR
//   corpus.bin           every sample's UTF-8 bytes, back to back
//   index.tsv            one line per sample: byte offset, byte length, source
//   <encoding>.ref       one line per sample: its token count, then (every
//                        ID_EVERY-th sample) its token ids, space-separated
// for o200k_base and cl100k_base, and prints a summary. The C++ side
// (tests/tokenizer/differential_main.cpp) counts the same samples and
// requires every count and id list to be equal.
//
// The reference is OpenAI's tiktoken as the `tiktoken` npm package (the WASM
// build of its Rust core: fancy-regex pre-tokenization, the BPE of
// src/lib.rs), encode_ordinary, given the patterns of the current tiktoken
// (tiktoken_ext/openai_public.py): the package's own cl100k pattern predates
// the possessive form of tiktoken 0.8.
//
// The text comes from what a bare Debian machine with scripts/setup.sh's
// packages has, plus generators with a fixed seed:
//   - 26 scripts generated from their Unicode blocks (words, punctuation,
//     digits, lines), and vim's tutorials in ~30 languages;
//   - English prose: /usr/share/doc/*/copyright;
//   - code: C/C++ headers in /usr/include, JavaScript of npm packages here;
//   - JSON (chat requests, nested values in many scripts), numbers,
//     whitespace runs (tabs, CRLF, NBSP, U+3000, U+2028, U+0085),
//     emoji runs (ZWJ sequences, skin tones, flags, keycaps), and random
//     strings of the characters where the patterns' alternatives differ.
// Each source is cut into samples of 1 byte to 16 KB at code point
// boundaries.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const { Tiktoken } = require('tiktoken');

const ID_EVERY = 8;
const MIN_TOTAL_BYTES = 10 * 1024 * 1024;

// tiktoken_ext/openai_public.py (tiktoken 0.9-0.12).
const PATTERNS = {
  o200k_base: [
    String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
    String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
    String.raw`\p{N}{1,3}`,
    String.raw` ?[^\s\p{L}\p{N}]+[\r\n/]*`,
    String.raw`\s*[\r\n]+`,
    String.raw`\s+(?!\S)`,
    String.raw`\s+`,
  ].join('|'),
  cl100k_base: String.raw`'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`,
};

// ---- a seeded generator ---------------------------------------------------
let seed = 0x5eed1234;
function rand() {  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

// ---- sources ----------------------------------------------------------------
const sources = [];  // {name, text}
const add = (name, text) => { if (text.length > 0) sources.push({ name, text }); };

// Scripts from their blocks: letters and marks the block assigns (by
// JavaScript's tables), words of 1-12 of them, punctuation and digits
// between. U+0CF3 and U+0ECE are left out: Unicode 15 added them, and
// PCRE2 10.42's tables, which Sluice's pre-tokenizer uses, are Unicode 14's.
const SCRIPTS = {
  latin: [[0x41, 0x5a], [0x61, 0x7a], [0xc0, 0x24f]], greek: [[0x370, 0x3ff], [0x1f00, 0x1ffe]],
  cyrillic: [[0x400, 0x52f]], armenian: [[0x531, 0x58a]], hebrew: [[0x591, 0x5f4]],
  arabic: [[0x600, 0x6ff]], devanagari: [[0x900, 0x97f]], bengali: [[0x980, 0x9fe]],
  gurmukhi: [[0xa00, 0xa76]], gujarati: [[0xa81, 0xaff]], tamil: [[0xb82, 0xbfa]], telugu: [[0xc00, 0xc7f]],
  kannada: [[0xc80, 0xcf2]], malayalam: [[0xd00, 0xd7f]], sinhala: [[0xd81, 0xdf4]], thai: [[0xe01, 0xe5b]],
  lao: [[0xe81, 0xecd], [0xed0, 0xedf]], tibetan: [[0xf00, 0xfda]], myanmar: [[0x1000, 0x109f]],
  georgian: [[0x10a0, 0x10ff]], ethiopic: [[0x1200, 0x137c]], cherokee: [[0x13a0, 0x13fd], [0xab70, 0xabbf]],
  khmer: [[0x1780, 0x17f9]], hangul: [[0xac00, 0xd7a3]], kana: [[0x3041, 0x30ff]], cjk: [[0x4e00, 0x9fff]],
};
const assigned = /[\p{L}\p{M}\p{N}]/u;
for (const [name, ranges] of Object.entries(SCRIPTS)) {
  const chars = [];
  for (const [lo, hi] of ranges) {
    for (let cp = lo; cp <= hi; ++cp) {
      const ch = String.fromCodePoint(cp);
      if (cp !== 0xcf3 && cp !== 0xece && assigned.test(ch)) chars.push(ch);
    }
  }
  // Frequent characters first: a Zipf-like pick keeps common words recurring.
  const zipf = () => chars[Math.min(chars.length - 1, Math.floor(chars.length * rand() ** 3))];
  const words = Array.from({ length: 400 }, () => Array.from({ length: int(1, 8) }, zipf).join(''));
  const parts = [];
  let size = 0;
  while (size < 150000) {
    let w = rand() < 0.7 ? pick(words) : Array.from({ length: int(1, 12) }, zipf).join('');
    if (rand() < 0.05) w = String(int(0, 99999));
    const sep = rand() < 0.8 ? ' ' : pick(['. ', ', ', '\n', '\n\n', '; ', ' (', ') ', '! ', '? ', ': "', '" ']);
    parts.push(w, sep);
    size += w.length * 2 + sep.length;
  }
  add(`script:${name}`, parts.join(''));
}

// vim's tutorials (vim-runtime), the UTF-8 ones.
for (const dir of fs.readdirSync('/usr/share/vim').filter((d) => /^vim\d+$/.test(d))) {
  const tutor = path.join('/usr/share/vim', dir, 'tutor');
  if (!fs.existsSync(tutor)) continue;
  for (const f of fs.readdirSync(tutor).filter((f) => f.endsWith('.utf-8')).sort()) {
    add(`vimtutor:${f}`, fs.readFileSync(path.join(tutor, f), 'utf8'));
  }
}

// Files under a folder, sorted, as text, until `limit` bytes.
function filesUnder(dir, test, limit) {
  const out = [];
  let size = 0;
  const walk = (d) => {
    let entries;
    try { entries = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (size >= limit) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) { walk(p); continue; }
      if (!e.isFile() || !test(p)) continue;
      const buf = fs.readFileSync(p);
      if (buf.length > 200000 || buf.includes(0)) continue;
      const text = buf.toString('utf8');
      if (text.includes('\uFFFD')) continue;  // not UTF-8
      out.push(text);
      size += buf.length;
    }
  };
  walk(dir);
  return out.join('\n');
}
add('prose:copyright', filesUnder('/usr/share/doc', (p) => p.endsWith('/copyright'), 1500000));
add('code:c-headers', filesUnder('/usr/include', (p) => /\.(h|hpp)$/.test(p) && !p.includes('/boost/'), 1500000));
add('code:boost', filesUnder('/usr/include/boost', (p) => p.endsWith('.hpp'), 800000));
add('code:javascript', filesUnder(path.join(here, 'node_modules'), (p) => /\.(js|cjs|mjs|ts)$/.test(p) &&
  !p.includes('/encoders/'), 400000));
add('code:e2e-javascript', filesUnder(path.resolve(here, '../../tests/e2e'), (p) => /\.(mjs|js|ts)$/.test(p), 600000));

// JSON: chat requests and nested values with strings in many scripts.
const scriptNames = Object.keys(SCRIPTS);
const sampleWord = () => {
  const want = `script:${pick(scriptNames)}`;
  const s = sources.find((x) => x.name === want).text;
  const at = int(0, s.length - 40);
  return s.slice(at, at + int(1, 40)).replace(/[\uD800-\uDBFF]$/, '');
};
function value(depth) {
  const r = rand();
  if (depth > 3 || r < 0.3) return pick([int(-1e6, 1e6), rand() * 1000, sampleWord(), true, null, `id_${int(0, 1e9)}`]);
  if (r < 0.6) return Array.from({ length: int(0, 5) }, () => value(depth + 1));
  const o = {};
  for (let k = int(0, 6); k > 0; --k) o[pick(['name', 'type', 'content', 'role', 'id', 'value', 'items', sampleWord()])] = value(depth + 1);
  return o;
}
{
  const parts = [];
  for (let size = 0; size < 900000;) {
    const req = rand() < 0.4
      ? { model: pick(['gpt-4o', 'gpt-4.1']), messages: Array.from({ length: int(1, 4) }, () => ({ role: pick(['system', 'user', 'assistant']), content: sampleWord() })) }
      : value(0);
    const s = rand() < 0.5 ? JSON.stringify(req) : JSON.stringify(req, null, pick([2, 4, '\t']));
    parts.push(s);
    size += s.length;
  }
  add('json', parts.join('\n'));
}

// Numbers.
{
  const parts = [];
  for (let size = 0; size < 500000;) {
    const s = pick([
      () => String(int(0, 1e9)), () => (rand() * 1e6).toFixed(int(0, 8)), () => `-${int(0, 99999)}.${int(0, 999)}e${int(-30, 30)}`,
      () => `+1 (${int(100, 999)}) ${int(100, 999)}-${int(1000, 9999)}`, () => `${int(1900, 2100)}-${String(int(1, 12)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')}`,
      () => '0x' + int(0, 2 ** 31).toString(16), () => String(int(0, 9)).repeat(int(1, 40)),
      () => '١٢٣٤٥٦٧٨٩٠'.slice(0, int(1, 10)), () => '²³¹⅓Ⅻ⑳'.slice(0, int(1, 6)), () => `${int(1, 100)}%`,
    ])();
    const sep = pick([' ', ', ', '\n', '\t', '', ' | ']);
    parts.push(s, sep);
    size += s.length + sep.length;
  }
  add('numbers', parts.join(''));
}

// Whitespace runs between words.
{
  const spaces = [' ', '  ', '   ', '\t', '\t\t', '\n', '\r\n', '\n\n\n', ' \n ', '\u00a0', '\u3000', '\u2028', '\u0085',
    '\u2003', '\u180e', '\ufeff', '\u000b', '\u000c', '    \n    '];
  const parts = [];
  for (let size = 0; size < 500000;) {
    const w = rand() < 0.3 ? sampleWord() : pick(['a', 'word', 'x', '1', '.', '#', "'s", 'Zz', '}']);
    let run = '';
    for (let k = int(1, 6); k > 0; --k) run += pick(spaces);
    parts.push(w, run);
    size += w.length + run.length;
  }
  add('whitespace', parts.join(''));
}

// Emoji runs.
{
  const base = [];
  for (let cp = 0x1f300; cp <= 0x1f64f; ++cp) base.push(String.fromCodePoint(cp));
  for (let cp = 0x1f680; cp <= 0x1f6c5; ++cp) base.push(String.fromCodePoint(cp));
  for (let cp = 0x2600; cp <= 0x26ff; ++cp) base.push(String.fromCodePoint(cp));
  const tone = () => String.fromCodePoint(0x1f3fb + int(0, 4));
  const flag = () => String.fromCodePoint(0x1f1e6 + int(0, 25), 0x1f1e6 + int(0, 25));
  const parts = [];
  for (let size = 0; size < 500000;) {
    const e = pick([
      () => pick(base), () => pick(base) + tone(), () => pick(base) + '\u200d' + pick(base), () => flag(),
      () => `${int(0, 9)}\ufe0f\u20e3`, () => pick(base) + '\ufe0f', () => pick(base).repeat(int(2, 9)),
      () => '👩‍👩‍👧‍👦', () => ' ' + pick(base), () => sampleWord() + pick(base),
    ])();
    const sep = pick(['', '', ' ', '\n', '!', ' and ']);
    parts.push(e, sep);
    size += e.length + sep.length;
  }
  add('emoji', parts.join(''));
}

// Random strings of the characters where the alternatives differ.
{
  const alphabet = ['a', 's', 't', 'e', 'l', 'd', 'm', 'v', 'r', 'S', 'T', 'L', 'D', 'M', 'R', 'A', 'Z', '0', '7', "'", ' ', ' ',
    '\t', '\n', '\r', '.', ',', '/', '-', '!', '_', '"', '\u0085', '\u00a0', '\u180e', '\u3000', '\ufeff', '\u2028', 'ſ', 'K',
    'ǅ', 'ʰ', '\u0301', '\u093e', 'é', 'É', '世', 'ア', 'Ж', '٣', '²', 'Ⅰ', '🎉', '\u200d', '\ufe0f', '𝐀'];
  const parts = [];
  for (let size = 0; size < 500000;) {
    let s = '';
    for (let k = int(1, 30); k > 0; --k) s += pick(alphabet);
    parts.push(s);
    size += s.length;
  }
  add('mixed:random', parts.join(''));
}

// ---- samples and reference counts --------------------------------------------
const outDir = process.argv[2];
if (!outDir) { console.error('usage: node corpus.mjs OUT_DIR'); process.exit(2); }
fs.mkdirSync(outDir, { recursive: true });

const encoders = {};
for (const name of Object.keys(PATTERNS)) {
  const { bpe_ranks, special_tokens } = require(`tiktoken/encoders/${name}.json`);
  encoders[name] = new Tiktoken(bpe_ranks, special_tokens, PATTERNS[name]);
}

const bufs = [];
const index = [];
const refs = Object.fromEntries(Object.keys(PATTERNS).map((n) => [n, []]));
let offset = 0;
let sampleNo = 0;
const perSource = [];
for (const { name, text } of sources) {
  const cps = Array.from(text);
  let bytes = 0;
  for (let i = 0; i < cps.length;) {
    // Mostly a few KB; some tiny ones (where edge cases of the pattern live).
    const len = rand() < 0.2 ? int(1, 16) : int(64, 4096);
    const sample = cps.slice(i, i + len).join('');
    i += len;
    const buf = Buffer.from(sample, 'utf8');
    bufs.push(buf);
    index.push(`${offset}\t${buf.length}\t${name}`);
    for (const [enc, tk] of Object.entries(encoders)) {
      const ids = tk.encode_ordinary(sample);
      refs[enc].push(sampleNo % ID_EVERY === 0 ? `${ids.length} ${Array.from(ids).join(' ')}` : `${ids.length}`);
    }
    offset += buf.length;
    bytes += buf.length;
    ++sampleNo;
  }
  perSource.push(`${name} ${bytes}`);
}
fs.writeFileSync(path.join(outDir, 'corpus.bin'), Buffer.concat(bufs));
fs.writeFileSync(path.join(outDir, 'index.tsv'), index.join('\n') + '\n');
for (const [enc, lines] of Object.entries(refs)) fs.writeFileSync(path.join(outDir, `${enc}.ref`), lines.join('\n') + '\n');
for (const tk of Object.values(encoders)) tk.free();

const scripts = new Set(sources.filter((s) => s.name.startsWith('script:') || s.name.startsWith('vimtutor:'))
  .map((s) => s.name.replace(/^vimtutor:tutor\.?/, '').replace(/\.utf-8$/, '') || 'en'));
console.log(`corpus: ${sampleNo} samples, ${offset} bytes, ${sources.length} sources, ${scripts.size} scripts/languages`);
console.log(perSource.join('\n'));
if (offset < MIN_TOTAL_BYTES) {
  console.error(`corpus: only ${offset} bytes, the test needs ${MIN_TOTAL_BYTES} (is scripts/setup.sh's vim-runtime installed?)`);
  process.exit(1);
}
