// Audio codecs behind one shape, for the transcoding path of a relay: each
// decodes a payload to 8 kHz PCM and encodes 20 ms of 8 kHz PCM. G.711 by
// tables; Opus through opusscript (WebAssembly libopus from the registry,
// nothing downloaded at install), run at its 8 kHz API rate so no resampler
// is needed (its RTP clock stays 48 kHz, RFC 7587).
import OpusScript from 'opusscript';
import type { Codec } from '../config/schema.ts';
import { decodeG711, encodeG711, type G711 } from './g711.ts';
import { PAYLOAD_TYPE } from './rtpLeg.ts';

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
    this.payloadType = PAYLOAD_TYPE[name]!;
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
  readonly payloadType = PAYLOAD_TYPE.OPUS!;
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

/** The codecs a transcoder can convert between. */
export const TRANSCODABLE: readonly Codec[] = ['PCMU', 'PCMA', 'OPUS'];

export function createCodec(name: Codec): AudioCodec | undefined {
  if (name === 'PCMU' || name === 'PCMA') return new G711Codec(name);
  if (name === 'OPUS') return new OpusCodec();
  return undefined;
}
