// The RTP side of the media benchmarks, run as its own process (pinned to
// its own core): one UDP socket per stream end, a 20 ms packet from each
// socket to its target, and a count of what comes back to each socket.
// Input (stdin, JSON): { streams: [{ target, send, pt? }], warmup, seconds }
// Output (stdout, JSON), after warmup + seconds: packets sent and received
// during the measured window, what a listener's jitter buffer would make of
// them (packets later than a 20 and a 40 ms buffer, RFC 3550 jitter), how late its own sending ran (the load is
// valid only if it kept time) and what the kernel dropped at its sockets (if
// it could not read fast enough, the count says so rather than blaming the
// process under test).
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { SrtpContext, parseInlineKey, type SrtpSuite } from '../src/media/srtp.ts';

interface Job {
  /** srtp: what goes to that target is SRTP under this suite and key */
  streams: Array<{ target: number; send: boolean; pt?: number; srtp?: { suite: SrtpSuite; key: string } }>;
  warmup: number;
  seconds: number;
  host?: string;
}

const job = JSON.parse(
  await new Promise<string>((resolve) => {
    let s = '';
    process.stdin.on('data', (d) => (s += d));
    process.stdin.on('end', () => resolve(s));
  }),
) as Job;
const host = job.host ?? '127.0.0.1';
const sockets: Socket[] = [];
let measuring = false;
/** after the window: replies to the window's last packets still count for relays (received_relayed) */
let grace = false;
let received = 0;
let late = 0;
// What a listener's jitter buffer would make of each stream (as bench/rtpload.c): transit = arrival less the
// RTP timestamp (8 kHz), from the stream's first packet; later than the least transit so far plus a buffer's
// depth = played late. jitter: RFC 3550 6.4.1. The SRTP header is in clear, so this reads SRTP too.
const heard = job.streams.map(() => ({ ts0: -1, a0: 0, min: 0, last: 0, jitter: 0 }));
let late20 = 0;
let late40 = 0;
for (let i = 0; i < job.streams.length; i++) {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  const h = heard[i]!;
  s.on('message', (m) => {
    if (m.length >= 12) {
      const a = performance.now();
      const ts = m.readUInt32BE(4);
      if (h.ts0 < 0) Object.assign(h, { ts0: ts, a0: a });
      const transit = a - h.a0 - ((ts - h.ts0) | 0) / 8;
      h.jitter += (Math.abs(transit - h.last) - h.jitter) / 16;
      h.last = transit;
      h.min = Math.min(h.min, transit);
      if (measuring && transit - h.min > 20) late20++;
      if (measuring && transit - h.min > 40) late40++;
    }
    if (measuring) received++;
    else if (grace) late++;
  });
  sockets.push(s);
}
const ports = new Set(sockets.map((s) => s.address().port));
/** Datagrams the kernel dropped at our sockets (the drops column of /proc/net/udp). */
const drops = () => {
  let n = 0;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    const port = parseInt(f[1]!.split(':')[1]!, 16);
    if (ports.has(port)) n += Number(f[12]);
  }
  return n;
};
// A PCMU/PCMA packet of a tone (the content does not matter to the devices).
const packets = job.streams.map((st, i) => {
  const p = Buffer.alloc(172);
  p[0] = 0x80;
  p[1] = st.pt ?? 0;
  p.writeUInt32BE(0x1000 + i, 8);
  for (let k = 0; k < 160; k++) p[12 + k] = Math.round(127 + 100 * Math.sin((2 * Math.PI * k) / 8)) & 0xff;
  return p;
});
// SRTP: the packets are made before the run (encrypting costs the load nothing), one sequence per suite and
// key serving every stream that uses them (each receiving leg has its own replay window and rollover counter).
const srtpRuns = new Map<string, Buffer[]>();
const srtpPackets = job.streams.map((st) => {
  if (!st.srtp) return undefined;
  const id = `${st.srtp.suite}/${st.srtp.key}`;
  let run = srtpRuns.get(id);
  if (!run) {
    const { key, salt } = parseInlineKey(st.srtp.key);
    const ctx = new SrtpContext(st.srtp.suite, key, salt);
    const p = Buffer.from(packets[0]!);
    p[1] = st.pt ?? 0;
    run = Array.from({ length: (job.warmup + job.seconds) * 50 + 500 }, (_, k) => {
      p.writeUInt16BE((k + 1) & 0xffff, 2);
      p.writeUInt32BE(((k + 1) * 160) >>> 0, 4);
      return ctx.protect(p);
    });
    srtpRuns.set(id, run);
  }
  return run;
});
let seq = 0;
let sent = 0;
let maxLate = 0;
/** how late each send tick of the window ran, ms */
const lates: number[] = [];
const tick = () => {
  seq = (seq + 1) & 0xffff;
  for (let i = 0; i < job.streams.length; i++) {
    const st = job.streams[i]!;
    // Streams that only receive (music on hold) send one packet a second to stay latched (spread over the second).
    if (!st.send && seq % 50 !== i % 50) continue;
    const srtp = srtpPackets[i];
    if (srtp) sockets[i]!.send(srtp[seq - 1]!, st.target, host);
    else {
      const p = packets[i]!;
      p.writeUInt16BE(seq, 2);
      p.writeUInt32BE((seq * 160) >>> 0, 4);
      sockets[i]!.send(p, st.target, host);
    }
    if (measuring) sent++;
  }
};
const start = performance.now();
let due = start;
const windowStart = start + job.warmup * 1000;
const end = windowStart + job.seconds * 1000;
let drops0 = 0;
await new Promise<void>((resolve) => {
  const loop = () => {
    const now = performance.now();
    if (!measuring && now >= windowStart) {
      measuring = true;
      drops0 = drops();
      process.stderr.write('window\n');
    }
    while (due <= now) {
      if (measuring) {
        maxLate = Math.max(maxLate, now - due);
        lates.push(now - due);
      }
      tick();
      due += 20;
    }
    if (now >= end) return resolve();
    setTimeout(loop, Math.max(0, due - performance.now()));
  };
  loop();
});
measuring = false;
grace = true;
await new Promise((r) => setTimeout(r, 60)); // replies to the last packets sent in the window
grace = false;
// received: during the window (streams a device sends by its clock); received_relayed: also the replies in flight at its end.
lates.sort((a, b) => a - b);
const p99 = lates[Math.floor(lates.length * 0.99)] ?? 0;
const jitters = heard
  .filter((h) => h.ts0 >= 0)
  .map((h) => h.jitter)
  .sort((a, b) => a - b);
process.stdout.write(
  JSON.stringify({
    sent,
    received,
    received_relayed: received + late,
    send_late_p99_ms: +p99.toFixed(1),
    send_late_max_ms: +maxLate.toFixed(1),
    kernel_drops: drops() - drops0,
    late_20: late20,
    late_40: late40,
    jitter_p99_ms: +(jitters[Math.floor(jitters.length * 0.99)] ?? 0).toFixed(2),
    jitter_max_ms: +(jitters.at(-1) ?? 0).toFixed(2),
  }),
);
for (const s of sockets) s.close();
process.exit(0);
