// A meet-me conference on one bridge: every 20 ms each participant's latest
// frame is mixed and each participant hears the mix minus its own voice.
// Participants may use different codecs (G.711 either law, G.722, L16,
// Opus): each has its own decoder and encoder. The room mixes at 8 kHz, or
// at 16 kHz once a wideband participant (G.722, L16, Opus) is in it, so
// wideband phones keep their upper band between them. Frames wait in a
// small per-participant jitter queue (up to 4 frames; the oldest is dropped
// when full).
import type { MediaClock } from './clock.ts';
import { FRAME_8K, createCodec, isWideband, type AudioCodec, type PcmRate } from './codec.ts';
import type { RtpView } from './rtp.ts';
import type { RtpLeg } from './rtpLeg.ts';

const MAX_FRAME = FRAME_8K * 2;
const DEPTH = 4;

interface Participant {
  leg: RtpLeg;
  codec: AudioCodec;
  decoded: Int16Array;
  ring: Int16Array[];
  head: number;
  count: number;
  current: Int16Array;
  enc: Buffer;
}

export class ConferenceRoom {
  private readonly people = new Map<RtpLeg, Participant>();
  /** legs to the same conference on other bridges (cascade): participants of the mix, not people */
  private readonly links = new Set<RtpLeg>();
  private rate: PcmRate = 8000;
  private frame = FRAME_8K;
  private readonly mix = new Int32Array(MAX_FRAME);
  private readonly out = new Int16Array(MAX_FRAME);
  private readonly silence = new Int16Array(MAX_FRAME);
  private readonly tick = () => this.mixOnce();

  constructor(
    readonly name: string,
    private readonly clock: MediaClock,
  ) {}

  get size(): number {
    return this.people.size;
  }

  /** participants other than links to other bridges */
  get participants(): number {
    return this.people.size - this.links.size;
  }

  /** The rate the room mixes at (16 kHz once a wideband participant joined). */
  get sampleRate(): PcmRate {
    return this.rate;
  }

  join(leg: RtpLeg, link = false): void {
    if (link) this.links.add(leg);
    if (this.rate === 8000 && isWideband(leg.codec)) this.widen();
    this.people.set(leg, this.participant(leg));
    leg.onPacket = (l, pkt, rtp) => this.receive(l, pkt, rtp);
    if (this.people.size === 1) this.clock.add(this.tick);
  }

  leave(leg: RtpLeg): void {
    const p = this.people.get(leg);
    if (!p) return;
    this.people.delete(leg);
    this.links.delete(leg);
    p.codec.close();
    leg.close();
    if (this.people.size === 0) this.clock.remove(this.tick);
  }

  private participant(leg: RtpLeg): Participant {
    const codec = createCodec(leg.codec ?? 'PCMU', this.rate) ?? createCodec('PCMU', this.rate)!;
    return {
      leg,
      codec,
      decoded: new Int16Array(MAX_FRAME * 6),
      ring: Array.from({ length: DEPTH }, () => new Int16Array(MAX_FRAME)),
      head: 0,
      count: 0,
      current: this.silence,
      enc: Buffer.alloc(1500),
    };
  }

  /** A wideband participant joins: the room goes to 16 kHz (every codec anew; their queues start empty). */
  private widen(): void {
    this.rate = 16000;
    this.frame = this.rate / 50;
    for (const [leg, p] of this.people) {
      p.codec.close();
      this.people.set(leg, this.participant(leg));
    }
  }

  private receive(leg: RtpLeg, pkt: Buffer, rtp: RtpView): void {
    const p = this.people.get(leg);
    if (!p || rtp.payloadType !== p.codec.payloadType) return;
    const n = p.codec.decode(pkt, rtp.payloadOffset, rtp.payloadLength, p.decoded);
    // 20 ms frames only (what phones send); other sizes are dropped, not stretched.
    if (n !== this.frame) return;
    if (p.count === DEPTH) {
      p.head = (p.head + 1) % DEPTH; // full: drop the oldest
      p.count--;
    }
    const slot = p.ring[(p.head + p.count) % DEPTH]!;
    for (let i = 0; i < n; i++) slot[i] = p.decoded[i]!;
    p.count++;
  }

  /** One 20 ms step: take a frame from each queue, mix, send each the mix without itself. */
  mixOnce(): void {
    const frame = this.frame;
    const mix = this.mix;
    mix.fill(0, 0, frame);
    for (const p of this.people.values()) {
      if (p.count > 0) {
        p.current = p.ring[p.head]!;
        p.head = (p.head + 1) % DEPTH;
        p.count--;
      } else p.current = this.silence;
      const f = p.current;
      for (let i = 0; i < frame; i++) mix[i]! += f[i]!;
    }
    const out = this.out;
    for (const p of this.people.values()) {
      const own = p.current;
      for (let i = 0; i < frame; i++) {
        const v = mix[i]! - own[i]!;
        out[i] = v > 32767 ? 32767 : Math.max(v, -32768);
      }
      const bytes = p.codec.encode(out, p.enc);
      p.leg.send(p.codec.payloadType, p.enc, 0, bytes, p.codec.tsPerFrame);
    }
  }

  close(): void {
    for (const leg of [...this.people.keys()]) this.leave(leg);
  }
}
