// A meet-me conference on one bridge: every 20 ms each participant's latest
// frame is mixed and each participant hears the mix minus its own voice.
// Participants may use different G.711 laws. Frames wait in a small per-
// participant jitter queue (up to 4 frames; the oldest is dropped when full).
import { decodeG711, encodeG711, type G711 } from './g711.ts';
import type { MediaClock } from './clock.ts';
import type { RtpView } from './rtp.ts';
import { PAYLOAD_TYPE, type RtpLeg } from './rtpLeg.ts';

const FRAME = 160; // 20 ms at 8 kHz
const DEPTH = 4;

interface Participant {
  leg: RtpLeg;
  codec: G711;
  ring: Int16Array[];
  head: number;
  count: number;
  current: Int16Array;
  enc: Buffer;
}

export class ConferenceRoom {
  private readonly people = new Map<RtpLeg, Participant>();
  private readonly mix = new Int32Array(FRAME);
  private readonly out = new Int16Array(FRAME);
  private readonly silence = new Int16Array(FRAME);
  private readonly tick = () => this.mixOnce();

  constructor(
    readonly name: string,
    private readonly clock: MediaClock,
  ) {}

  get size(): number {
    return this.people.size;
  }

  join(leg: RtpLeg): void {
    const codec: G711 = leg.codec === 'PCMA' ? 'PCMA' : 'PCMU';
    this.people.set(leg, {
      leg,
      codec,
      ring: Array.from({ length: DEPTH }, () => new Int16Array(FRAME)),
      head: 0,
      count: 0,
      current: this.silence,
      enc: Buffer.alloc(FRAME),
    });
    leg.onPacket = (l, pkt, rtp) => this.receive(l, pkt, rtp);
    if (this.people.size === 1) this.clock.add(this.tick);
  }

  leave(leg: RtpLeg): void {
    if (!this.people.delete(leg)) return;
    leg.close();
    if (this.people.size === 0) this.clock.remove(this.tick);
  }

  private receive(leg: RtpLeg, pkt: Buffer, rtp: RtpView): void {
    const p = this.people.get(leg);
    if (!p || rtp.payloadType !== PAYLOAD_TYPE[p.codec] || rtp.payloadLength < FRAME) return;
    if (p.count === DEPTH) {
      p.head = (p.head + 1) % DEPTH; // full: drop the oldest
      p.count--;
    }
    const slot = p.ring[(p.head + p.count) % DEPTH]!;
    decodeG711(p.codec, pkt, slot, FRAME, rtp.payloadOffset);
    p.count++;
  }

  /** One 20 ms step: take a frame from each queue, mix, send each the mix without itself. */
  mixOnce(): void {
    const mix = this.mix;
    mix.fill(0);
    for (const p of this.people.values()) {
      if (p.count > 0) {
        p.current = p.ring[p.head]!;
        p.head = (p.head + 1) % DEPTH;
        p.count--;
      } else p.current = this.silence;
      const f = p.current;
      for (let i = 0; i < FRAME; i++) mix[i]! += f[i]!;
    }
    const out = this.out;
    for (const p of this.people.values()) {
      const own = p.current;
      for (let i = 0; i < FRAME; i++) {
        const v = mix[i]! - own[i]!;
        out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      }
      encodeG711(p.codec, out, p.enc, FRAME);
      p.leg.send(PAYLOAD_TYPE[p.codec]!, p.enc, 0, FRAME, FRAME);
    }
  }

  close(): void {
    for (const leg of [...this.people.keys()]) this.leave(leg);
  }
}
