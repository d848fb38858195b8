// One music-on-hold audio source of an MOH device: the WAV is read once,
// encoded once per codec (in 20 ms frames, looped), and every held stream
// on this source gets the same frame each tick (fan-out: no per-stream
// coding).
import type { MediaClock } from './clock.ts';
import { FRAME_8K } from './codec.ts';
import { FramePlayer, type EncodedFrames } from './frames.ts';
import type { RtpLeg } from './rtpLeg.ts';

export class MohSource extends FramePlayer<EncodedFrames> {
  private frame = 0;
  private readonly count: number;

  constructor(name: string, pcm: Int16Array, clock: MediaClock) {
    super(name, pcm, clock);
    this.count = Math.floor(pcm.length / FRAME_8K);
    if (this.count === 0) throw new Error(`${name}: audio source shorter than 20 ms`);
  }

  add(leg: RtpLeg): void {
    this.listen(leg, this.frames(leg));
  }

  protected play(): void {
    const f = this.frame;
    this.frame = (this.frame + 1) % this.count;
    for (const [leg, enc] of this.listeners) {
      const payload = enc.frames[f]!;
      leg.send(enc.payloadType, payload, 0, payload.length, enc.tsPerFrame);
    }
  }
}
