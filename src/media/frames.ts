// A recording cut into 20 ms frames and encoded once per codec: what music
// on hold and announcements send, without coding per stream.
import type { Codec } from '../config/schema.ts';
import { PHASES, type MediaClock } from './clock.ts';
import { FRAME_8K, createCodec } from './codec.ts';
import type { RtpLeg } from './rtpLeg.ts';

export interface EncodedFrames {
  payloadType: number;
  tsPerFrame: number;
  frames: Buffer[];
}

/** The codec a leg gets frames in: its own when we can encode it, else PCMU. */
export function framesCodec(codec: Codec | undefined): Codec {
  return codec && createCodec(codec) ? codec : 'PCMU';
}

/** 8 kHz PCM, whole 20 ms frames only, encoded in `name`. */
export function encodeFrames(pcm: Int16Array, name: Codec): EncodedFrames {
  const codec = createCodec(name)!;
  const out = Buffer.alloc(1500);
  const frames: Buffer[] = [];
  for (let f = 0; f < Math.floor(pcm.length / FRAME_8K); f++) {
    const n = codec.encode(pcm.subarray(f * FRAME_8K, (f + 1) * FRAME_8K), out);
    frames.push(Buffer.from(out.subarray(0, n)));
  }
  const enc = { payloadType: codec.payloadType, tsPerFrame: codec.tsPerFrame, frames };
  codec.close();
  return enc;
}

/** The frames for a leg's codec from a per-codec cache (encoding them the first time). */
export function framesFor(cache: Map<Codec, EncodedFrames>, pcm: Int16Array, leg: RtpLeg): EncodedFrames {
  const codec = framesCodec(leg.codec);
  let enc = cache.get(codec);
  if (!enc) cache.set(codec, (enc = encodeFrames(pcm, codec)));
  return enc;
}

/**
 * A recording sent to listening legs on the 20 ms clock (music on hold, a
 * prompt): frames encoded once per codec, the clock ticking only while
 * someone listens. The listeners are spread over the clock's phases (the
 * fewest first), one handler each, so a thousand streams do not go out in
 * one burst. Subclasses decide which frame each listener of a phase gets.
 */
export abstract class FramePlayer<Listener> {
  private readonly encoded = new Map<Codec, EncodedFrames>();
  protected readonly listeners = new Map<RtpLeg, Listener>();
  /** the listeners of each phase, and each phase's handler */
  private readonly groups = Array.from({ length: PHASES }, () => new Map<RtpLeg, Listener>());
  private readonly ticks = this.groups.map((g, phase) => () => this.play(g, phase));

  constructor(
    readonly name: string,
    private readonly pcm: Int16Array,
    private readonly clock: MediaClock,
  ) {}

  get streams(): number {
    return this.listeners.size;
  }

  /** The frames in this leg's codec. */
  protected frames(leg: RtpLeg): EncodedFrames {
    return framesFor(this.encoded, this.pcm, leg);
  }

  protected listen(leg: RtpLeg, listener: Listener): void {
    // A listener sends nothing anyone hears; its packets only latch the leg.
    leg.onPacket = () => undefined;
    this.listeners.set(leg, listener);
    const phase = this.groups.reduce((best, g, i) => (g.size < this.groups[best]!.size ? i : best), 0);
    this.groups[phase]!.set(leg, listener);
    if (this.groups[phase]!.size === 1) this.clock.add(this.ticks[phase]!, phase);
  }

  remove(leg: RtpLeg): void {
    if (!this.listeners.delete(leg)) return;
    leg.close();
    for (const [phase, g] of this.groups.entries()) {
      if (g.delete(leg) && g.size === 0) this.clock.remove(this.ticks[phase]!);
    }
  }

  close(): void {
    for (const leg of [...this.listeners.keys()]) this.remove(leg);
  }

  /** Sends this phase's listeners their next frame (every 20 ms). */
  protected abstract play(group: ReadonlyMap<RtpLeg, Listener>, phase: number): void;
}
