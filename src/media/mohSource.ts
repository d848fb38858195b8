// One music-on-hold audio source of an MOH device: the WAV is read once,
// encoded once per codec (in 20 ms frames, looped), and every held stream
// on this source gets the same frame each tick (fan-out: no per-stream
// coding).
import type { Codec } from '../config/schema.ts';
import type { MediaClock } from './clock.ts';
import { FRAME_8K } from './codec.ts';
import { framesFor, type EncodedFrames as Encoded } from './frames.ts';
import type { RtpLeg } from './rtpLeg.ts';

export class MohSource {
  private readonly encoded = new Map<Codec, Encoded>();
  private readonly listeners = new Map<RtpLeg, Encoded>();
  private frame = 0;
  private readonly frames: number;
  private readonly tick = () => this.play();

  constructor(
    readonly name: string,
    private readonly pcm: Int16Array,
    private readonly clock: MediaClock,
  ) {
    this.frames = Math.floor(pcm.length / FRAME_8K);
    if (this.frames === 0) throw new Error(`${name}: audio source shorter than 20 ms`);
  }

  get streams(): number {
    return this.listeners.size;
  }

  add(leg: RtpLeg): void {
    const enc = framesFor(this.encoded, this.pcm, leg);
    // Held phones send nothing worth hearing; their packets only latch the leg.
    leg.onPacket = () => undefined;
    this.listeners.set(leg, enc);
    if (this.listeners.size === 1) this.clock.add(this.tick);
  }

  remove(leg: RtpLeg): void {
    if (!this.listeners.delete(leg)) return;
    leg.close();
    if (this.listeners.size === 0) this.clock.remove(this.tick);
  }

  private play(): void {
    const f = this.frame;
    this.frame = (this.frame + 1) % this.frames;
    for (const [leg, enc] of this.listeners) {
      const payload = enc.frames[f]!;
      leg.send(enc.payloadType, payload, 0, payload.length, enc.tsPerFrame);
    }
  }

  close(): void {
    for (const leg of [...this.listeners.keys()]) this.remove(leg);
  }
}
