// One prompt of an annunciator: a recording played once from its start to
// each listener (each at its own position), encoded once per codec. Legs
// that finished stay open and silent until their allocation is released.
import type { MediaClock } from './clock.ts';
import { FramePlayer, type EncodedFrames } from './frames.ts';
import type { RtpLeg } from './rtpLeg.ts';

export class Prompt extends FramePlayer<{ enc: EncodedFrames; next: number }> {
  readonly durationMs: number;

  constructor(name: string, pcm: Int16Array, clock: MediaClock) {
    super(name, pcm, clock);
    this.durationMs = Math.floor(pcm.length / 160) * 20;
    if (this.durationMs === 0) throw new Error(`${name}: prompt shorter than 20 ms`);
  }

  add(leg: RtpLeg): void {
    this.listen(leg, { enc: this.frames(leg), next: 0 });
  }

  protected play(group: ReadonlyMap<RtpLeg, { enc: EncodedFrames; next: number }>): void {
    for (const [leg, l] of group) {
      if (l.next >= l.enc.frames.length) continue;
      const payload = l.enc.frames[l.next++]!;
      leg.send(l.enc.payloadType, payload, 0, payload.length, l.enc.tsPerFrame, l.next === 1);
    }
  }
}
