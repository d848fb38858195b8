// A raw capture of the loopback (tcpdump, as root) and what an eavesdropper
// hears in it: every UDP stream that looks like RTP with a G.711 payload type
// is decoded as G.711 and searched for test tones. An SRTP stream decodes to
// noise; a plain one gives its tone back.
import { readFileSync } from 'node:fs';
import { decodeG711 } from '../../src/media/g711.ts';
import { start, type Proc } from './proc.ts';
import { toneShare } from './audio.ts';

export interface Datagram {
  src: number;
  dst: number;
  payload: Buffer;
}

export class LoopbackCapture {
  private constructor(
    private readonly proc: Proc,
    private readonly file: string,
  ) {}

  /** Starts tcpdump on lo for UDP to or from these port ranges ([lo, hi] each). */
  static async start(file: string, ranges: Array<[number, number]>): Promise<LoopbackCapture> {
    const filter = ranges.map(([a, b]) => `portrange ${a}-${b}`).join(' or ');
    const proc = start('tcpdump', ['-i', 'lo', '-U', '-n', '-w', file, `udp and (${filter})`]);
    // tcpdump says "listening on lo" on stderr once it captures.
    const t0 = Date.now();
    while (!proc.output().includes('listening on')) {
      if (proc.child.exitCode !== null) throw new Error(`tcpdump exited: ${proc.output()}`);
      if (Date.now() - t0 > 10_000) throw new Error(`tcpdump did not start: ${proc.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return new LoopbackCapture(proc, file);
  }

  /** Stops capturing and reads the UDP datagrams captured (pcap, Ethernet framing on lo). */
  async stop(): Promise<Datagram[]> {
    this.proc.child.kill('SIGINT');
    await new Promise((r) => (this.proc.child.exitCode !== null ? r(undefined) : this.proc.child.once('exit', r)));
    return readPcap(readFileSync(this.file));
  }
}

function readPcap(b: Buffer): Datagram[] {
  const le = b.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const link = u32(20);
  const out: Datagram[] = [];
  for (let at = 24; at + 16 <= b.length; ) {
    const caplen = u32(at + 8);
    const frame = b.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    const ip = link === 1 ? 14 : link === 113 ? 16 : 0; // Ethernet, Linux cooked
    if (frame.length < ip + 28 || frame[ip]! >> 4 !== 4 || frame[ip + 9] !== 17) continue;
    const udp = ip + (frame[ip]! & 0x0f) * 4;
    out.push({ src: frame.readUInt16BE(udp), dst: frame.readUInt16BE(udp + 2), payload: frame.subarray(udp + 8) });
  }
  return out;
}

/**
 * For each destination port with RTP-looking G.711 packets: how much of each
 * frequency an eavesdropper decoding the payloads as G.711 hears.
 */
export function tonesOnTheWire(
  datagrams: Datagram[],
  freqs: number[],
): Array<{ dst: number; packets: number; share: Record<number, number> }> {
  const byPort = new Map<number, Buffer[]>();
  for (const d of datagrams) {
    const p = d.payload;
    if (p.length < 12 + 80 || p[0]! >> 6 !== 2) continue;
    const pt = p[1]! & 0x7f;
    if (pt !== 0 && pt !== 8) continue;
    const list = byPort.get(d.dst) ?? [];
    list.push(p);
    byPort.set(d.dst, list);
  }
  const out: Array<{ dst: number; packets: number; share: Record<number, number> }> = [];
  for (const [dst, packets] of byPort) {
    if (packets.length < 50) continue;
    // Packet by packet (20 ms each), averaged: a stream's gaps and restarts do not smear the tone.
    const pcm = new Int16Array(160);
    const share: Record<number, number> = Object.fromEntries(freqs.map((f) => [f, 0]));
    for (const p of packets) {
      decodeG711((p[1]! & 0x7f) === 0 ? 'PCMU' : 'PCMA', p.subarray(12, 172), pcm, Math.min(160, p.length - 12));
      for (const f of freqs) share[f]! += toneShare(pcm, 8000, f) / packets.length;
    }
    for (const f of freqs) share[f] = +share[f]!.toFixed(3);
    out.push({ dst, packets: packets.length, share });
  }
  return out;
}
