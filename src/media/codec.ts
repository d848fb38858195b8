// Audio codecs behind one shape, for the transcoding path of a relay, the
// conference mixer and music on hold: each decodes a payload to PCM and
// encodes 20 ms of PCM at the rate the device works at: 8 kHz, or 16 kHz
// when a wideband party (G.722, L16, Opus) is on it, so its upper band
// survives. G.711 by tables (through the 8 <-> 16 kHz resampler at 16 kHz);
// G.722 (ours, g722.ts) and L16 natively at 16 kHz; Opus through opusscript
// (WebAssembly libopus from the registry, nothing downloaded at install) at
// the device's rate (its RTP clock stays 48 kHz, RFC 7587).
import OpusScript from 'opusscript';
import type { Codec } from '../config/schema.ts';
import { decodeG711, encodeG711, type G711 } from './g711.ts';
import { G722Decoder, G722Encoder } from './g722.ts';
import { Downsampler, Upsampler } from './resample.ts';
import { RTP_FORMAT } from './rtpFormats.ts';

/** 20 ms at 8 kHz */
export const FRAME_8K = 160;

/** The PCM rate a codec instance decodes to and encodes from: 16 kHz keeps a wideband party's upper band. */
export type PcmRate = 8000 | 16000;

export interface AudioCodec {
  readonly name: Codec;
  readonly payloadType: number;
  /** RTP timestamp units per 20 ms frame */
  readonly tsPerFrame: number;
  readonly rate: PcmRate;
  /** samples in 20 ms at `rate` */
  readonly frame: number;
  /** Decodes one payload into out (at `rate`); returns the sample count (0: undecodable). */
  decode(payload: Buffer, off: number, len: number, out: Int16Array): number;
  /** Encodes `frame` samples; returns the byte count written into out. */
  encode(pcm: Int16Array, out: Buffer): number;
  close(): void;
}

/** Codecs that carry the 4-8 kHz band: a device handling one works at 16 kHz. */
export const isWideband = (c: Codec | undefined): boolean => c === 'G722' || c === 'L16' || c === 'OPUS';

class G711Codec implements AudioCodec {
  readonly payloadType: number;
  readonly tsPerFrame = FRAME_8K;
  readonly frame: number;
  private readonly narrow = new Int16Array(FRAME_8K * 6);
  private readonly up: Upsampler | undefined;
  private readonly down: Downsampler | undefined;

  constructor(
    readonly name: G711,
    readonly rate: PcmRate,
  ) {
    this.payloadType = RTP_FORMAT[name].payloadType;
    this.frame = rate / 50;
    if (rate === 16000) [this.up, this.down] = [new Upsampler(), new Downsampler()];
  }
  decode(payload: Buffer, off: number, len: number, out: Int16Array): number {
    if (!this.up) {
      const n = Math.min(len, out.length);
      decodeG711(this.name, payload, out, n, off);
      return n;
    }
    const n = Math.min(len, this.narrow.length, out.length >> 1);
    decodeG711(this.name, payload, this.narrow, n, off);
    return this.up.process(this.narrow, n, out);
  }
  encode(pcm: Int16Array, out: Buffer): number {
    // (no view per packet: the downsampled frame is the first FRAME_8K samples of `narrow`)
    if (this.down) this.down.process(pcm, this.frame, this.narrow);
    encodeG711(this.name, this.down ? this.narrow : pcm, out, FRAME_8K);
    return FRAME_8K;
  }
  close(): void {}
}

class OpusCodec implements AudioCodec {
  readonly name = 'OPUS' as const;
  readonly payloadType = RTP_FORMAT.OPUS.payloadType;
  readonly tsPerFrame = 960;
  readonly frame: number;
  private readonly opus: OpusScript;
  private readonly pcmBytes: Buffer;

  constructor(readonly rate: PcmRate) {
    this.frame = rate / 50;
    this.opus = new OpusScript(rate, 1, OpusScript.Application.VOIP);
    this.pcmBytes = Buffer.alloc(this.frame * 2);
  }

  decode(payload: Buffer, off: number, len: number, out: Int16Array): number {
    let pcm: Buffer;
    try {
      pcm = this.opus.decode(payload.subarray(off, off + len));
    } catch {
      return 0; // a corrupt packet: a gap, not a crash
    }
    const n = Math.min(pcm.length >> 1, out.length);
    for (let i = 0; i < n; i++) out[i] = pcm.readInt16LE(i * 2);
    return n;
  }

  encode(pcm: Int16Array, out: Buffer): number {
    for (let i = 0; i < this.frame; i++) this.pcmBytes.writeInt16LE(pcm[i]!, i * 2);
    const packet = this.opus.encode(this.pcmBytes, this.frame);
    packet.copy(out, 0);
    return packet.length;
  }

  close(): void {
    this.opus.delete();
  }
}

/** Wideband codecs: 16 kHz on the wire; at 8 kHz inside only for a narrowband device. */
abstract class Wideband implements AudioCodec {
  abstract readonly name: Codec;
  abstract readonly payloadType: number;
  abstract readonly tsPerFrame: number;
  readonly frame: number;
  private readonly down: Downsampler | undefined;
  private readonly up: Upsampler | undefined;
  protected readonly wide = new Int16Array(FRAME_8K * 2 * 6);

  constructor(readonly rate: PcmRate) {
    this.frame = rate / 50;
    if (rate === 8000) [this.down, this.up] = [new Downsampler(), new Upsampler()];
  }

  protected abstract decodeWide(payload: Buffer, off: number, len: number, out: Int16Array): number;
  protected abstract encodeWide(pcm: Int16Array, n: number, out: Buffer): number;

  decode(payload: Buffer, off: number, len: number, out: Int16Array): number {
    if (!this.down) return this.decodeWide(payload, off, len, out);
    const n = this.decodeWide(payload, off, len, this.wide);
    return this.down.process(this.wide, Math.min(n, out.length * 2) & ~1, out);
  }

  encode(pcm: Int16Array, out: Buffer): number {
    if (!this.up) return this.encodeWide(pcm, this.frame, out);
    const n = this.up.process(pcm, FRAME_8K, this.wide);
    return this.encodeWide(this.wide, n, out);
  }

  close(): void {}
}

class G722Codec extends Wideband {
  readonly name = 'G722' as const;
  readonly payloadType = RTP_FORMAT.G722.payloadType;
  /** G.722's RTP clock is 8000 although it samples at 16 kHz (RFC 3551 §4.5.2) */
  readonly tsPerFrame = FRAME_8K;
  private readonly enc = new G722Encoder();
  private readonly dec = new G722Decoder();
  protected decodeWide(payload: Buffer, off: number, len: number, out: Int16Array): number {
    return this.dec.decode(payload, off, len, out);
  }
  protected encodeWide(pcm: Int16Array, n: number, out: Buffer): number {
    return this.enc.encode(pcm, n, out);
  }
}

class L16Codec extends Wideband {
  readonly name = 'L16' as const;
  readonly payloadType = RTP_FORMAT.L16.payloadType;
  readonly tsPerFrame = FRAME_8K * 2;
  protected decodeWide(payload: Buffer, off: number, len: number, out: Int16Array): number {
    const n = Math.min(len >> 1, out.length);
    for (let i = 0; i < n; i++) out[i] = payload.readInt16BE(off + i * 2);
    return n;
  }
  protected encodeWide(pcm: Int16Array, n: number, out: Buffer): number {
    for (let i = 0; i < n; i++) out.writeInt16BE(pcm[i]!, i * 2);
    return n * 2;
  }
}

/** The codecs the media devices encode and decode (and a transcoder converts between). */
export const MEDIA_CODECS: readonly Codec[] = ['PCMU', 'PCMA', 'G722', 'L16', 'OPUS'];

/** A codec working at `rate` inside (default 8 kHz; 16 kHz when a wideband party is on the device). */
export function createCodec(name: Codec, rate: PcmRate = 8000): AudioCodec | undefined {
  if (name === 'PCMU' || name === 'PCMA') return new G711Codec(name, rate);
  if (name === 'G722') return new G722Codec(rate);
  if (name === 'L16') return new L16Codec(rate);
  if (name === 'OPUS') return new OpusCodec(rate);
  return undefined;
}
