// Test audio: tone WAV files for the phones to play, and a Goertzel check of
// which tones a recording holds.
import { readFileSync, writeFileSync } from 'node:fs';

/** A 16-bit mono PCM WAV with a sine tone. */
export function writeToneWav(path: string, freqHz: number, seconds: number, rate = 8000): void {
  const n = Math.round(seconds * rate);
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * freqHz * i) / rate)), i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([h, data]));
}

export interface Pcm {
  rate: number;
  channels: number;
  samples: Int16Array;
}

/** Reads a 16-bit PCM WAV (first channel), walking the chunks. */
export function readWav(path: string): Pcm {
  const b = readFileSync(path);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE') throw new Error(`${path} is not a WAV file`);
  let off = 12;
  let rate = 0;
  let channels = 1;
  let bits = 16;
  while (off + 8 <= b.length) {
    const id = b.toString('ascii', off, off + 4);
    let size = b.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      channels = b.readUInt16LE(body + 2);
      rate = b.readUInt32LE(body + 4);
      bits = b.readUInt16LE(body + 14);
    } else if (id === 'data') {
      if (bits !== 16) throw new Error(`${path}: ${bits}-bit WAV not supported`);
      // A recorder killed mid-file leaves the size unset: take what is there.
      if (size === 0 || body + size > b.length) size = b.length - body;
      const frames = Math.floor(size / (2 * channels));
      const samples = new Int16Array(frames);
      for (let i = 0; i < frames; i++) samples[i] = b.readInt16LE(body + i * 2 * channels);
      return { rate, channels, samples };
    }
    off = body + size + (size % 2);
  }
  throw new Error(`${path} has no data chunk`);
}

/** Power of one frequency in a block of samples (Goertzel), normalised by the block's energy. */
export function toneShare(samples: Int16Array, rate: number, freqHz: number): number {
  const k = (2 * Math.cos((2 * Math.PI * freqHz) / rate));
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (const x of samples) {
    const s0 = x + k * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += x * x;
  }
  const power = s1 * s1 + s2 * s2 - k * s1 * s2;
  return energy === 0 ? 0 : (2 * power) / (samples.length * energy);
}

/** Share of the recording's energy at each frequency, over its loud part. */
export function tonesIn(pcm: Pcm, freqs: number[]): { rms: number; share: Record<number, number> } {
  let sum = 0;
  for (const x of pcm.samples) sum += x * x;
  const rms = Math.sqrt(sum / Math.max(1, pcm.samples.length));
  const share: Record<number, number> = {};
  for (const f of freqs) share[f] = toneShare(pcm.samples, pcm.rate, f);
  return { rms, share };
}
