// G.711 µ-law and A-law (ITU-T G.711) by lookup tables: 256-entry decode
// tables and 64 Ki-entry encode tables, built once, so coding a sample is
// one array read on the hot path.

function ulawDecodeOne(u: number): number {
  u = ~u & 0xff;
  const sign = u & 0x80;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return sign ? -magnitude : magnitude;
}

function alawDecodeOne(a: number): number {
  a ^= 0x55;
  const sign = a & 0x80;
  const exponent = (a >> 4) & 0x07;
  const mantissa = a & 0x0f;
  const magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  return sign ? magnitude : -magnitude;
}

function ulawEncodeOne(sample: number): number {
  const BIAS = 0x84;
  const CLIP = 32635;
  let sign = 0;
  let s = sample;
  if (s < 0) {
    s = -s;
    sign = 0x80;
  }
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

const A_SEG_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

function alawEncodeOne(sample: number): number {
  let v = sample >> 3; // 13-bit magnitude
  let mask: number;
  if (v >= 0) mask = 0xd5;
  else {
    mask = 0x55;
    v = -v - 1;
  }
  let seg = 0;
  while (seg < 8 && v > A_SEG_END[seg]!) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  const aval = (seg << 4) | ((seg < 2 ? v >> 1 : v >> seg) & 0x0f);
  return aval ^ mask;
}

export const ULAW_DECODE = Int16Array.from({ length: 256 }, (_, i) => ulawDecodeOne(i));
export const ALAW_DECODE = Int16Array.from({ length: 256 }, (_, i) => alawDecodeOne(i));
const ULAW_ENCODE = Uint8Array.from({ length: 65536 }, (_, i) => ulawEncodeOne(i - 32768));
const ALAW_ENCODE = Uint8Array.from({ length: 65536 }, (_, i) => alawEncodeOne(i - 32768));
/** Direct µ-law <-> A-law byte maps (G.711 Annex), for transcoding without PCM. */
export const ULAW_TO_ALAW = Uint8Array.from({ length: 256 }, (_, i) => ALAW_ENCODE[ULAW_DECODE[i]! + 32768]!);
export const ALAW_TO_ULAW = Uint8Array.from({ length: 256 }, (_, i) => ULAW_ENCODE[ALAW_DECODE[i]! + 32768]!);

export type G711 = 'PCMU' | 'PCMA';

export function decodeG711(codec: G711, src: Uint8Array, dst: Int16Array, n = src.length, srcOffset = 0): void {
  const t = codec === 'PCMU' ? ULAW_DECODE : ALAW_DECODE;
  for (let i = 0; i < n; i++) dst[i] = t[src[srcOffset + i]!]!;
}

export function encodeG711(codec: G711, src: Int16Array, dst: Uint8Array, n = src.length): void {
  const t = codec === 'PCMU' ? ULAW_ENCODE : ALAW_ENCODE;
  for (let i = 0; i < n; i++) dst[i] = t[src[i]! + 32768]!;
}
