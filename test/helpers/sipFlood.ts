// A stranger's UDP REGISTER flood, as its own process (so the node under
// test and the flooder each have a core): `node --import tsx
// test/helpers/sipFlood.ts HOST:PORT RATE SECONDS SOURCE[,SOURCE...]`.
// REGISTERs with bogus credentials for many users, new Call-IDs, from the
// given local addresses; prints `sent N` when done.
import { createSocket, type Socket } from 'node:dgram';

const [target, rateArg, secondsArg, sourcesArg] = process.argv.slice(2);
if (!target || !rateArg || !secondsArg || !sourcesArg) {
  console.error('usage: sipFlood HOST:PORT RATE SECONDS SOURCE[,SOURCE...]');
  process.exit(2);
}
const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
const rate = Number(rateArg);
const seconds = Number(secondsArg);

async function open(address: string): Promise<{ sock: Socket; address: string; port: number }> {
  const sock = createSocket('udp4');
  sock.on('message', () => undefined);
  sock.on('error', () => undefined);
  await new Promise<void>((r) => sock.bind(0, address, () => r()));
  return { sock, address, port: sock.address().port };
}

const socks = await Promise.all(sourcesArg.split(',').map(open));
// Pre-built datagrams (the flood costs the sender little), 512 variants per source.
const datagrams = socks.map((s) =>
  Array.from({ length: 512 }, (_, i) => {
    const user = String(1000 + ((i * 7919) % 9000));
    const tag = `${s.port}x${i}`;
    return Buffer.from(
      `REGISTER sip:${host}:${port} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP ${s.address}:${s.port};branch=z9hG4bK${tag};rport\r\n` +
        `Max-Forwards: 70\r\nFrom: <sip:${user}@${host}>;tag=${tag}\r\nTo: <sip:${user}@${host}>\r\n` +
        `Call-ID: flood-${tag}\r\nCSeq: 1 REGISTER\r\nContact: <sip:${user}@${s.address}:${s.port}>\r\nExpires: 600\r\n` +
        `Authorization: Digest username="${user}", realm="x", nonce="n${i}", uri="sip:x", response="00000000000000000000000000000000"\r\n` +
        'Content-Length: 0\r\n\r\n',
    );
  }),
);

let sent = 0;
const t0 = Date.now();
const tickMs = 5;
while (Date.now() - t0 < seconds * 1000) {
  const due = Math.floor(((Date.now() - t0) / 1000) * rate);
  while (sent < due) {
    const k = sent % socks.length;
    socks[k]!.sock.send(datagrams[k]![sent % 512]!, port, host);
    sent++;
  }
  await new Promise((r) => setTimeout(r, tickMs));
}
await new Promise((r) => setTimeout(r, 200));
for (const s of socks) s.sock.close();
console.log(`sent ${sent}`);
