// Audio codecs behind one shape, for the transcoding path of a relay, the
// conference mixer and music on hold: each decodes a payload to 8 kHz PCM
// and encodes 20 ms of 8 kHz PCM. G.711 by tables; G.722 (ours, g722.ts)
// and L16 at 16 kHz through the 8 <-> 16 kHz resampler; Opus through
// opusscript (WebAssembly libopus from the registry, nothing downloaded at
// install), run at its 8 kHz API rate (its RTP clock stays 48 kHz, RFC 7587).
import OpusScript from 'opusscript';
import type { Codec } from '../config/schema.ts';
import { decodeG711, encodeG711, type G711 } from './g711.ts';
import { G722Decoder, G722Encoder } from './g722.ts';
import { Downsampler, Upsampler } from './resample.ts';
import { RTP_FORMAT } from './rtpFormats.ts';

/** 20 ms at 8 kHz */
export const FRAME_8K = 160;

export interface AudioCodec {
  readonly name: Codec;
  readonly payloadType: number;
  /** RTP timestamp units per 20 ms frame */
  readonly tsPerFrame: number;
  /** Decodes one payload into out (8 kHz); returns the sample count (0: undecodable). */
  decode(payload: Buffer, off: number, len: number, out: Int16Array): number;
  /** Encodes FRAME_8K samples; returns the byte count written into out. */
  encode(pcm: Int16Array, out: Buffer): number;
  close(): void;
}

class G711Codec implements AudioCodec {
  readonly payloadType: number;
  readonly tsPerFrame = FRAME_8K;
  constructor(readonly name: G711) {
    this.payloadType = RTP_FORMAT[name].payloadType;
  }
  decode(payload: Buffer, off: number, len: number, out: Int16Array): number {
    const n = Math.min(len, out.length);
    decodeG711(this.name, payload, out, n, off);
    return n;
  }
  encode(pcm: Int16Array, out: Buffer): number {
    encodeG711(this.name, pcm, out, FRAME_8K);
    return FRAME_8K;
  }
  close(): void {}
}

class OpusCodec implements AudioCodec {
  readonly name = 'OPUS' as const;
  readonly payloadType = RTP_FORMAT.OPUS.payloadType;
  readonly tsPerFrame = 960;
  private readonly opus = new OpusScript(8000, 1, OpusScript.Application.VOIP);
  private readonly pcmBytes = Buffer.alloc(FRAME_8K * 2);

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
    for (let i = 0; i < FRAME_8K; i++) this.pcmBytes.writeInt16LE(pcm[i]!, i * 2);
    const packet = this.opus.encode(this.pcmBytes, FRAME_8K);
    packet.copy(out, 0);
    return packet.length;
  }

  close(): void {
    this.opus.delete();
  }
}

/** Wideband codecs: 16 kHz on the wire, 8 kHz inside. */
abstract class Wideband implements AudioCodec {
  abstract readonly name: Codec;
  abstract readonly payloadType: number;
  abstract readonly tsPerFrame: number;
  private readonly down = new Downsampler();
  private readonly up = new Upsampler();
  protected readonly wide = new Int16Array(FRAME_8K * 2 * 6);

  protected abstract decodeWide(payload: Buffer, off: number, len: number, out: Int16Array): number;
  protected abstract encodeWide(pcm: Int16Array, n: number, out: Buffer): number;

  decode(payload: Buffer, off: number, len: number, out: Int16Array): number {
    const n = this.decodeWide(payload, off, len, this.wide);
    return this.down.process(this.wide, Math.min(n, out.length * 2) & ~1, out);
  }

  encode(pcm: Int16Array, out: Buffer): number {
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

export function createCodec(name: Codec): AudioCodec | undefined {
  if (name === 'PCMU' || name === 'PCMA') return new G711Codec(name);
  if (name === 'G722') return new G722Codec();
  if (name === 'L16') return new L16Codec();
  if (name === 'OPUS') return new OpusCodec();
  return undefined;
}
