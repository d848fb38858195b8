// One music-on-hold audio source of an MOH device: the WAV is read once,
// encoded once per codec, looped, and every held stream on this source gets
// the same 20 ms frame each tick (fan-out: no per-stream coding).
import { encodeG711, type G711 } from './g711.ts';
import type { MediaClock } from './clock.ts';
import { PAYLOAD_TYPE, type RtpLeg } from './rtpLeg.ts';

const FRAME = 160;

export class MohSource {
  private readonly encoded = new Map<G711, Buffer>();
  private readonly listeners = new Set<RtpLeg>();
  private frame = 0;
  private readonly frames: number;
  private readonly tick = () => this.play();

  constructor(
    readonly name: string,
    private readonly pcm: Int16Array,
    private readonly clock: MediaClock,
  ) {
    this.frames = Math.floor(pcm.length / FRAME);
    if (this.frames === 0) throw new Error(`${name}: audio source shorter than 20 ms`);
  }

  get streams(): number {
    return this.listeners.size;
  }

  add(leg: RtpLeg): void {
    const codec: G711 = leg.codec === 'PCMA' ? 'PCMA' : 'PCMU';
    if (!this.encoded.has(codec)) {
      const buf = Buffer.alloc(this.frames * FRAME);
      encodeG711(codec, this.pcm, buf, buf.length);
      this.encoded.set(codec, buf);
    }
    // Held phones send nothing worth hearing; their packets only latch the leg.
    leg.onPacket = () => undefined;
    this.listeners.add(leg);
    if (this.listeners.size === 1) this.clock.add(this.tick);
  }

  remove(leg: RtpLeg): void {
    if (!this.listeners.delete(leg)) return;
    leg.close();
    if (this.listeners.size === 0) this.clock.remove(this.tick);
  }

  private play(): void {
    const off = this.frame * FRAME;
    this.frame = (this.frame + 1) % this.frames;
    for (const leg of this.listeners) {
      const codec: G711 = leg.codec === 'PCMA' ? 'PCMA' : 'PCMU';
      leg.send(PAYLOAD_TYPE[codec]!, this.encoded.get(codec)!, off, FRAME, FRAME);
    }
  }

  close(): void {
    for (const leg of [...this.listeners]) this.remove(leg);
  }
}
