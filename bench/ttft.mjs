// Time to the first SSE event, measured on a raw keep-alive socket so the
// client adds as little as possible. Usage:
//   node bench/ttft.mjs N KEY name url [name url ...]
import net from 'node:net';

const [n, key, ...targets] = process.argv.slice(2);
const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, max_tokens: 16,
  messages: [{ role: 'user', content: 'My order 1234 arrived damaged. What can I do?' }] });

function measure(url, count) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname);
    sock.setNoDelay(true);
    const times = [];
    let t0 = 0n, buf = '', gotFirst = false;
    const send = () => {
      buf = ''; gotFirst = false; t0 = process.hrtime.bigint();
      sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    };
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (!gotFirst && buf.includes('data: ')) {
        gotFirst = true;
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      // The chunked body ends at the last chunk ("0") and the end of the
      // trailer section (Sluice sends its cost there).
      const last = buf.indexOf('\r\n0\r\n');
      if (last >= 0 && buf.indexOf('\r\n\r\n', last + 2) >= 0 && buf.includes('[DONE]')) {
        if (times.length >= count) { sock.end(); resolve(times); } else send();
      }
    });
    sock.on('error', reject);
    sock.on('connect', send);
  });
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const p99 = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]; };
console.log('| target | median ms | p99 ms | added vs direct, ms |');
console.log('|---|---:|---:|---:|');
let base = 0;
for (let i = 0; i < targets.length; i += 2) {
  const times = await measure(targets[i + 1], Number(n));
  const m = median(times);
  if (i === 0) base = m;
  console.log(`| ${targets[i]} | ${m.toFixed(3)} | ${p99(times).toFixed(3)} | ${i === 0 ? '-' : (m - base).toFixed(3)} |`);
}
