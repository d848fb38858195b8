// An admin API flood, as its own process: `node --import tsx
// test/helpers/httpFlood.ts URL COUNT CONCURRENCY [TOKEN]`: COUNT GETs of
// URL, CONCURRENCY at a time, each on a new connection; prints
// `done N statuses {...}`.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const [url, countArg, concArg, token] = process.argv.slice(2);
if (!url || !countArg || !concArg) {
  console.error('usage: httpFlood URL COUNT CONCURRENCY [TOKEN]');
  process.exit(2);
}
const count = Number(countArg);
const statuses: Record<string, number> = {};
let started = 0;
let done = 0;
const one = () =>
  new Promise<void>((resolve) => {
    // (https: a full handshake for every request, against the node's self-signed certificate)
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(
      url,
      {
        agent: false,
        rejectUnauthorized: false,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        timeout: 15_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
          resolve();
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      statuses[err.code ?? 'error'] = (statuses[err.code ?? 'error'] ?? 0) + 1;
      resolve();
    });
    req.on('timeout', () => req.destroy());
    req.end();
  });
async function worker(): Promise<void> {
  while (started < count) {
    started++;
    await one();
    done++;
  }
}
await Promise.all(Array.from({ length: Number(concArg) }, worker));
console.log(`done ${done} statuses ${JSON.stringify(statuses)}`);
