// One music-on-hold audio source of an MOH device: the WAV is read once,
// encoded once per codec (in 20 ms frames, looped), and every held stream
// on this source gets the same frame each tick (fan-out: no per-stream
// coding).
import { PHASES, type MediaClock } from './clock.ts';
import { FRAME_8K } from './codec.ts';
import { FramePlayer, type EncodedFrames } from './frames.ts';
import type { RtpLeg } from './rtpLeg.ts';

export class MohSource extends FramePlayer<EncodedFrames> {
  /** the next frame of each phase's listeners */
  private readonly frame = new Array<number>(PHASES).fill(0);
  private readonly count: number;

  constructor(name: string, pcm: Int16Array, clock: MediaClock) {
    super(name, pcm, clock);
    this.count = Math.floor(pcm.length / FRAME_8K);
    if (this.count === 0) throw new Error(`${name}: audio source shorter than 20 ms`);
  }

  add(leg: RtpLeg): void {
    this.listen(leg, this.frames(leg));
  }

  protected play(group: ReadonlyMap<RtpLeg, EncodedFrames>, phase: number): void {
    const f = this.frame[phase]!;
    this.frame[phase] = (f + 1) % this.count;
    for (const [leg, enc] of group) {
      const payload = enc.frames[f]!;
      leg.send(enc.payloadType, payload, 0, payload.length, enc.tsPerFrame);
    }
  }
}
