// The RTP side of the media benchmarks, run as its own process (its own
// core): one UDP socket per stream end, a 20 ms PCMU packet from each socket
// to its target, and a count of what comes back to each socket.
// Input (stdin, JSON): { streams: [{ target: port, send: boolean }], seconds }
// Output (stdout, JSON): { sent, received, perStream: number[] } after `seconds`.
import { createSocket, type Socket } from 'node:dgram';

interface Job {
  streams: Array<{ target: number; send: boolean; pt?: number }>;
  seconds: number;
  host?: string;
}

const job = JSON.parse(await new Promise<string>((resolve) => {
  let s = '';
  process.stdin.on('data', (d) => (s += d));
  process.stdin.on('end', () => resolve(s));
})) as Job;
const host = job.host ?? '127.0.0.1';
const sockets: Socket[] = [];
const received = new Array<number>(job.streams.length).fill(0);
for (let i = 0; i < job.streams.length; i++) {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  s.on('message', () => received[i]!++);
  sockets.push(s);
}
// A PCMU packet of a 1 kHz tone (the content does not matter to the devices).
const packets = job.streams.map((_st, i) => {
  const p = Buffer.alloc(172);
  p[0] = 0x80;
  p[1] = job.streams[i]!.pt ?? 0;
  p.writeUInt32BE(0x1000 + i, 8);
  for (let k = 0; k < 160; k++) p[12 + k] = Math.round(127 + 100 * Math.sin((2 * Math.PI * k) / 8)) & 0xff;
  return p;
});
let seq = 0;
let sent = 0;
const tick = () => {
  seq = (seq + 1) & 0xffff;
  for (let i = 0; i < job.streams.length; i++) {
    const st = job.streams[i]!;
    // Streams that only receive (music on hold) send one packet a second to stay latched.
    if (!st.send && seq % 50 !== 1) continue;
    const p = packets[i]!;
    p.writeUInt16BE(seq, 2);
    p.writeUInt32BE((seq * 160) >>> 0, 4);
    sockets[i]!.send(p, st.target, host);
    sent++;
  }
};
let due = performance.now();
const end = due + job.seconds * 1000;
await new Promise<void>((resolve) => {
  const loop = () => {
    const now = performance.now();
    while (due <= now) {
      tick();
      due += 20;
    }
    if (now >= end) return resolve();
    setTimeout(loop, Math.max(0, due - performance.now()));
  };
  loop();
});
await new Promise((r) => setTimeout(r, 200)); // the last packets in flight
process.stdout.write(JSON.stringify({ sent, received: received.reduce((a, b) => a + b, 0), perStream: received }));
for (const s of sockets) s.close();
process.exit(0);
