// A recording cut into 20 ms frames and encoded once per codec: what music
// on hold and announcements send, without coding per stream.
import type { Codec } from '../config/schema.ts';
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
