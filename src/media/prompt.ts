// One prompt of an annunciator: a recording played once from its start to
// each listener (each at its own position), encoded once per codec. Legs
// that finished stay open and silent until their allocation is released.
import type { Codec } from '../config/schema.ts';
import type { MediaClock } from './clock.ts';
import { framesFor, type EncodedFrames } from './frames.ts';
import type { RtpLeg } from './rtpLeg.ts';

export class Prompt {
  private readonly encoded = new Map<Codec, EncodedFrames>();
  private readonly listeners = new Map<RtpLeg, { enc: EncodedFrames; next: number }>();
  private readonly tick = () => this.play();
  readonly durationMs: number;

  constructor(
    readonly name: string,
    private readonly pcm: Int16Array,
    private readonly clock: MediaClock,
  ) {
    this.durationMs = Math.floor(pcm.length / 160) * 20;
    if (this.durationMs === 0) throw new Error(`${name}: prompt shorter than 20 ms`);
  }

  add(leg: RtpLeg): void {
    const enc = framesFor(this.encoded, this.pcm, leg);
    leg.onPacket = () => undefined; // the caller's own audio is not heard by anyone
    this.listeners.set(leg, { enc, next: 0 });
    if (this.listeners.size === 1) this.clock.add(this.tick);
  }

  remove(leg: RtpLeg): void {
    if (!this.listeners.delete(leg)) return;
    leg.close();
    if (this.listeners.size === 0) this.clock.remove(this.tick);
  }

  private play(): void {
    for (const [leg, l] of this.listeners) {
      if (l.next >= l.enc.frames.length) continue;
      const payload = l.enc.frames[l.next++]!;
      leg.send(l.enc.payloadType, payload, 0, payload.length, l.enc.tsPerFrame, l.next === 1);
    }
  }

  close(): void {
    for (const leg of [...this.listeners.keys()]) this.remove(leg);
  }
}
