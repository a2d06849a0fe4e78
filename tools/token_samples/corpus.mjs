// Builds the large token corpus that tests/core/token_estimate_test.cpp
// (TokenEstimateCorpusTest) checks the estimator against: a few MB of mixed
// text cut into excerpts of every length from 1 byte to 64 KB, each with its
// real token count under o200k_base and cl100k_base (gpt-tokenizer).
//
//   cd tools/token_samples && npm ci && node corpus.mjs [out-file]
//
// The default out-file is build/release/token_corpus.txt (scripts/test.sh
// runs this before ctest). The corpus is generated, not committed: its
// sources are files of pinned Debian and npm packages (scripts/setup.sh,
// package-lock.json) and generators with fixed seeds, so every machine set
// up by scripts/setup.sh gets the same excerpts, whatever else it has
// installed and whatever this repository's sources say.
//
// Sources:
//  * prose in 30+ languages: vim's tutor files (vim-runtime), day/month/
//    language names of every glibc locale (/usr/share/i18n/locales, written
//    there as <Uxxxx> escapes), the copyright and changelog files of a
//    fixed list of Debian packages;
//  * code: libstdc++'s headers (g++-12), Python's standard library,
//    gpt-tokenizer's TypeScript and lodash's JavaScript (npm);
//  * JSON: package manifests, test data, generated objects (pretty, minified);
//  * generated: numbers and CSV, hex/base64/UUIDs, random letters in every
//    case mix, whitespace runs (up to 20,000 spaces), emoji runs with
//    modifiers and ZWJ sequences, random code points from many scripts and
//    random bytes (decoded as UTF-8 with U+FFFD for invalid ones).
//
// Output format (read without a JSON library): per excerpt one header line
//   <o200k> <cl100k> <bytes> <source>\n
// followed by exactly <bytes> bytes of UTF-8 text and a "\n".
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { samples } from './samples.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const out = path.resolve(process.argv[2] ?? path.join(repo, 'build/release/token_corpus.txt'));

// mulberry32: a small deterministic PRNG (Math.random has no seed).
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.below = (n) => Math.floor(next() * n);
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  return next;
}

const read = (file) => {
  const buf = fs.readFileSync(file);
  return (file.endsWith('.gz') ? zlib.gunzipSync(buf) : buf).toString('utf8');
};
const listFiles = (dir, pred, max = Infinity) => {
  const res = [];
  const walk = (d) => {
    if (res.length >= max) return;
    let ents;
    try {
      ents = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of ents) {
      if (res.length >= max) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && pred(p)) res.push(p);
    }
  };
  walk(dir);
  return res;
};
const need = (file) => {
  if (!fs.existsSync(file)) throw new Error(`missing ${file}: run scripts/setup.sh (and npm ci here)`);
  return file;
};

// ---------------------------------------------------------------------------
// Documents: [source, text, budget in bytes of excerpts to take from it].
const docs = [];
const add = (source, text, budget) => {
  if (text.length > 0) docs.push({ source, text, budget });
};

// Prose in many languages.
const tutorDir = need('/usr/share/vim/vim90/tutor');
for (const f of fs.readdirSync(tutorDir).sort()) {
  if (f.startsWith('tutor') && f.endsWith('.utf-8')) add(`tutor:${f.slice(6, -6) || 'en'}`, read(path.join(tutorDir, f)), 45_000);
}
if (!fs.existsSync(path.join(tutorDir, 'tutor.utf-8'))) add('tutor:en', read(path.join(tutorDir, 'tutor')), 45_000);

// glibc locales: every quoted string made only of <Uxxxx> escapes (names of
// days, months, languages, countries, yes/no words) joined as lines.
{
  const dir = need('/usr/share/i18n/locales');
  const byScript = new Map();
  for (const f of fs.readdirSync(dir).sort()) {
    if (!/^[a-z]{2,3}_[A-Z]{2}$/.test(f)) continue;
    const words = [];
    for (const m of read(path.join(dir, f)).matchAll(/"((?:<U[0-9A-Fa-f]{4,6}>)+)"/g)) {
      const s = m[1].replace(/<U([0-9A-Fa-f]{4,6})>/g, (_, h) => String.fromCodePoint(parseInt(h, 16)));
      if (/\p{L}{2}/u.test(s)) words.push(s);
    }
    if (words.length) add(`locale:${f}`, words.join('\n'), 1_500);
  }
}

// Debian documentation (English prose, licences, changelogs) of a fixed
// list of packages that every machine running scripts/setup.sh has: the
// corpus must not change when a package is added to the machine (the first
// N files of /usr/share/doc would).
const docPackages = [
  'apt', 'bash', 'bzip2', 'ca-certificates', 'clang-19', 'clang-format-14', 'clang-tidy-19', 'cmake', 'coreutils',
  'curl', 'dash', 'diffutils', 'dpkg', 'findutils', 'g++-12', 'gcc-12', 'git', 'grep', 'gzip', 'libbenchmark-dev',
  'libboost1.81-dev', 'libc6', 'libcli11-dev', 'libfmt-dev', 'libgmock-dev', 'libgoogle-perftools-dev', 'libgtest-dev',
  'libhiredis-dev', 'libpcre2-dev', 'libpq-dev', 'libsimdjson-dev', 'libspdlog-dev', 'libsqlite3-dev', 'libssl-dev',
  'libstdc++6', 'libyaml-cpp-dev', 'llvm-19', 'locales', 'login', 'mawk', 'ninja-build', 'nginx-light',
  'nlohmann-json3-dev', 'openssl', 'passwd', 'perl', 'pkg-config', 'sed', 'tar', 'util-linux', 'vim-runtime', 'wrk',
  'zlib1g',
];
for (const pkg of docPackages) {
  const dir = path.join('/usr/share/doc', pkg);
  if (!fs.existsSync(dir)) continue;
  for (const f of listFiles(dir, (p) => /\/(copyright|changelog\.Debian\.gz|README(\.md|\.txt)?)$/.test(p), 8)) {
    add(`doc:${pkg}`, read(f), 1_500);
  }
}

// Code.
// C++: libstdc++'s own headers (g++-12), not this repository's sources:
// the corpus must not change with every commit.
for (const f of listFiles(need('/usr/include/c++/12/bits'), (p) => /\.h$/.test(p), 130)) add('code:cpp', read(f), 2_500);
for (const f of listFiles(need('/usr/lib/python3.11'), (p) => /\/[a-z_]+\.py$/.test(p) && !p.includes('/test'), 120)) {
  add('code:python', read(f), 3_000);
}
for (const f of listFiles(need(path.join(here, 'node_modules/gpt-tokenizer/src')), (p) => /\.ts$/.test(p) && !p.includes('bpeRanks'))) {
  add('code:ts', read(f), 3_000);
}
for (const f of listFiles(need(path.join(here, 'node_modules/lodash')), (p) => /\/[a-z]\w*\.js$/.test(p) && !p.endsWith('.min.js'), 250)) {
  add('code:js', read(f), 1_200);
}
add('code:js-min', read(need(path.join(here, 'node_modules/lodash/lodash.min.js'))), 20_000);

// JSON.
for (const f of listFiles(path.join(repo, 'tests/data'), (p) => p.endsWith('.json') && !p.includes('token_samples'))) add('json:tests', read(f), 4_000);
for (const f of listFiles(path.join(here, 'node_modules'), (p) => p.endsWith('/package.json'), 50)) add('json:package', read(f), 2_000);

// The hand-written samples.
for (const s of samples) add(`sample:${s.name}`, s.text, 2_000);

// Generated content, each with its own seed.
{
  const r = rng(1);
  const rec = (depth) => {
    const k = r.below(depth > 2 ? 4 : 7);
    if (k === 0) return r.below(2) ? r.below(1e6) : Math.round(r() * 1e6) / 1e3;
    if (k === 1) return r.pick(['alpha', 'user', 'Paris', 'gpt-4o', 'ok', 'Hello, world!', 'résumé', '東京', '']);
    if (k === 2) return r.pick([true, false, null]);
    if (k === 3) return Array.from({ length: r.below(5) }, () => r.below(1000));
    if (k === 4) return Array.from({ length: 1 + r.below(4) }, () => rec(depth + 1));
    const o = {};
    for (let i = r.below(6); i >= 0; --i) o[r.pick(['id', 'name', 'type', 'value', 'created_at', 'items', 'tool_calls', 'maxTokens', 'x'])] = rec(depth + 1);
    return o;
  };
  let json = '';
  for (let i = 0; i < 300; ++i) json += JSON.stringify(rec(0), null, i % 2 ? 2 : undefined) + '\n';
  add('gen:json', json, 150_000);
}
{
  const r = rng(2);
  let s = '';
  for (let i = 0; i < 6000; ++i) {
    const k = r.below(6);
    if (k === 0) s += String(r.below(10 ** (1 + r.below(9))));
    else if (k === 1) s += (r() * 10 ** r.below(8)).toFixed(r.below(7));
    else if (k === 2) s += `${r.below(3000)}-${String(1 + r.below(12)).padStart(2, '0')}-${String(1 + r.below(28)).padStart(2, '0')}`;
    else if (k === 3) s += Array.from({ length: 1 + r.below(8) }, () => r.below(100000)).join(',');
    else if (k === 4) s += (r() - 0.5).toExponential(r.below(12));
    else s += String(r.below(2 ** 31) * 2 ** 20 + r.below(2 ** 20));
    s += r.pick([' ', ' ', '\n', ', ', ';', '\t']);
  }
  add('gen:numbers', s, 150_000);
}
{
  const r = rng(3);
  const bytes = (n) => Buffer.from(Array.from({ length: n }, () => r.below(256)));
  let s = '';
  for (let i = 0; i < 3000; ++i) {
    const k = r.below(6);
    const b = bytes(1 + r.below(64));
    if (k === 0) s += b.toString('hex');
    else if (k === 1) s += b.toString('hex').toUpperCase();
    else if (k === 2) s += b.toString('base64');
    else if (k === 3) s += b.toString('base64url');
    else if (k === 4) s += [8, 4, 4, 4, 12].map((n) => bytes(n / 2).toString('hex')).join('-');
    else s += `sha256:${bytes(32).toString('hex')}`;
    s += r.pick([' ', '\n', '", "', ' = ', ':']);
  }
  add('gen:hex-base64', s, 200_000);
}
{
  const r = rng(4);
  const lower = 'abcdefghijklmnopqrstuvwxyz';
  const alnum = lower + lower.toUpperCase() + '0123456789';
  let s = '';
  for (let i = 0; i < 5000; ++i) {
    const k = r.below(5);
    const n = 1 + r.below(r.below(4) === 0 ? 200 : 16);
    const from = k === 0 ? lower : k === 1 ? lower.toUpperCase() : k === 2 ? lower + lower.toUpperCase() : k === 3 ? alnum : 'bcdfghjklmnpqrstvwxz';
    for (let j = 0; j < n; ++j) s += from[r.below(from.length)];
    s += r.pick([' ', ' ', '\n', '_', '.', '-']);
  }
  add('gen:random-letters', s, 200_000);
}
{
  const r = rng(5);
  let s = '';
  for (let i = 0; i < 2500; ++i) {
    const n = r.below(4) === 0 ? 1 + r.below(r.below(8) === 0 ? 20_000 : 300) : 1 + r.below(12);
    const k = r.below(7);
    if (k === 0) s += ' '.repeat(n);
    else if (k === 1) s += '\t'.repeat(n);
    else if (k === 2) s += '\n'.repeat(n);
    else if (k === 3) s += '\r\n'.repeat(n);
    else if (k === 4) s += '\n' + ' '.repeat(n);
    else if (k === 5) s += Array.from({ length: n }, () => r.pick([' ', '\t', '\n', '\r', '\v', '\f'])).join('');
    else s += ' \n'.repeat(n);
    s += r.pick(['x', 'word', '1', '.', '{', '', 'é', '中']);
  }
  add('gen:whitespace', s, 400_000);
}
{
  const r = rng(6);
  const emoji = () => {
    const k = r.below(6);
    const base = String.fromCodePoint(r.pick([0x1f300, 0x1f600, 0x1f680, 0x1f900, 0x1fa70, 0x2600, 0x2700]) + r.below(0x50));
    if (k === 0) return base + String.fromCodePoint(0x1f3fb + r.below(5));
    if (k === 1) return base + '\u200d' + String.fromCodePoint(0x1f300 + r.below(0x300));
    if (k === 2) return String.fromCodePoint(0x1f1e6 + r.below(26), 0x1f1e6 + r.below(26));
    if (k === 3) return base + '\ufe0f';
    return base;
  };
  let s = '';
  for (let i = 0; i < 4000; ++i) {
    const n = 1 + r.below(r.below(5) === 0 ? 60 : 4);
    for (let j = 0; j < n; ++j) s += emoji();
    s += r.pick([' ', ' ', '\n', '!', ' ok ', ' great ', '']);
  }
  add('gen:emoji', s, 150_000);
}
{
  const r = rng(7);
  // Blocks of many scripts: [first, size]. Words of random letters from one
  // block, separated by spaces: the worst case for each script.
  const blocks = [
    [0x00c0, 0x180], [0x0370, 0x90], [0x0400, 0x100], [0x0530, 0x60], [0x0590, 0x70], [0x0600, 0x100],
    [0x0900, 0x80], [0x0980, 0x80], [0x0b80, 0x80], [0x0e00, 0x60], [0x10a0, 0x60], [0x1100, 0x100],
    [0x1e00, 0x100], [0x2000, 0x70], [0x2190, 0x170], [0x3040, 0xc0], [0x4e00, 0x5200], [0xac00, 0x2ba4],
    [0xff00, 0xf0], [0x20000, 0xa6e0], [0x1d400, 0x400], [0x00a0, 0x60],
  ];
  let s = '';
  for (let i = 0; i < 6000; ++i) {
    const [first, size] = r.pick(blocks);
    const n = 1 + r.below(r.below(6) === 0 ? 60 : 8);
    for (let j = 0; j < n; ++j) s += String.fromCodePoint(first + r.below(size));
    s += r.pick([' ', ' ', '\n', '. ', ', ', '']);
  }
  add('gen:random-unicode', s, 250_000);
}
{
  const r = rng(8);
  let s = '';
  for (let i = 0; i < 1500; ++i) {
    const b = Buffer.from(Array.from({ length: 1 + r.below(80) }, () => (r.below(3) ? 32 + r.below(95) : r.below(256))));
    s += b.toString('utf8') + '\n';  // invalid sequences become U+FFFD
  }
  add('gen:random-bytes', s, 100_000);
}

// ---------------------------------------------------------------------------
// Excerpts: consecutive pieces of each document up to its budget, lengths
// log-uniform from 1 to 16K characters (a few up to 64K), half of them
// moved to end before a space or newline as a whole-word excerpt would.
const cut = rng(42);
const records = [];
let total = 0;
const opts = { disallowedSpecial: new Set(), allowedSpecial: new Set() };
const record = (source, text) => {
  const bytes = Buffer.from(text, 'utf8');
  total += bytes.length;
  records.push(Buffer.from(`${o200k(text, opts)} ${cl100k(text, opts)} ${bytes.length} ${source}\n`), bytes, Buffer.from('\n'));
  return bytes.length;
};
// The hand-written samples whole, as tests/data/token_samples.json has them.
for (const s of samples) record(`whole:${s.name}`, s.text);
for (const doc of docs) {
  const chars = Array.from(doc.text);  // code points: never split a character
  let at = 0;
  let taken = 0;
  while (at < chars.length && taken < doc.budget) {
    let len = Math.max(1, Math.round(Math.exp(cut() * Math.log(cut.below(20) === 0 ? 65536 : 16384))));
    len = Math.min(len, chars.length - at);
    let end = at + len;
    if (cut.below(2) === 0) {
      while (end < chars.length && end - at < len * 2 && !/\s/.test(chars[end])) ++end;
    }
    const text = chars.slice(at, end).join('');
    at = end;
    if (/^\s*$/.test(text) && !doc.source.startsWith('gen:whitespace')) continue;
    taken += record(doc.source, text);
  }
}
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, Buffer.concat(records));
console.log(`wrote ${records.length / 3} excerpts, ${total} bytes of text from ${docs.length} documents to ${out}`);
