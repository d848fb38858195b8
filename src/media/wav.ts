// WAV files: 16-bit PCM in and out (music on hold sources, test tones).
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';

/** A WAV file's bytes, header and data, for 16-bit PCM samples (interleaved when channels > 1). */
export function wavBytes(samples: Int16Array, rate: number, channels = 1): [header: Buffer, data: Buffer] {
  // WAV is little-endian, like the hosts Node runs on in practice: then the samples' own bytes are the data
  // (a minute of 48 kHz stereo is 5.8 M samples: written one by one, a second of a blocked loop).
  let data: Buffer;
  if (LITTLE_ENDIAN) data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  else {
    data = Buffer.alloc(samples.length * 2);
    for (let i = 0; i < samples.length; i++) data.writeInt16LE(samples[i]!, i * 2);
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2 * channels, 28);
  h.writeUInt16LE(2 * channels, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return [h, data];
}

/** Writes 16-bit PCM samples (interleaved when channels > 1) as a WAV file. */
export function writeWav(path: string, samples: Int16Array, rate: number, channels = 1): void {
  const fd = openSync(path, 'w');
  try {
    for (const b of wavBytes(samples, rate, channels))
      for (let done = 0; done < b.length; ) done += writeSync(fd, b, done);
  } finally {
    closeSync(fd);
  }
}

/** A sine tone as 16-bit PCM samples (the same on every channel). */
export function toneSamples(freqHz: number, seconds: number, rate = 8000, channels = 1): Int16Array {
  const n = Math.round(seconds * rate);
  const samples = new Int16Array(n * channels);
  // A whole number of hertz repeats every second: compute one second and copy it (a sine per sample of two
  // minutes at 48 kHz is half a second of blocked loop).
  const computed = Number.isInteger(freqHz) ? Math.min(n, rate) : n;
  for (let i = 0; i < computed; i++) {
    const v = Math.round(12000 * Math.sin((2 * Math.PI * freqHz * i) / rate));
    for (let c = 0; c < channels; c++) samples[i * channels + c] = v;
  }
  for (let done = computed * channels; done < samples.length; done *= 2)
    samples.copyWithin(done, 0, Math.min(done, samples.length - done));
  return samples;
}

/** A 16-bit PCM WAV with a sine tone (the same on every channel). */
export function writeToneWav(path: string, freqHz: number, seconds: number, rate = 8000, channels = 1): void {
  writeWav(path, toneSamples(freqHz, seconds, rate, channels), rate, channels);
}

export interface Pcm {
  rate: number;
  channels: number;
  samples: Int16Array;
}

/** Reads a 16-bit PCM WAV (first channel), walking the chunks. */
export function readWav(path: string): Pcm {
  const b = readFileSync(path);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE')
    throw new Error(`${path} is not a WAV file`);
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
      if (LITTLE_ENDIAN && channels === 1 && (b.byteOffset + body) % 2 === 0) {
        samples.set(new Int16Array(b.buffer, b.byteOffset + body, frames));
      } else {
        for (let i = 0; i < frames; i++) samples[i] = b.readInt16LE(body + i * 2 * channels);
      }
      return { rate, channels, samples };
    }
    off = body + size + (size % 2);
  }
  throw new Error(`${path} has no data chunk`);
}

/** Mono 8 kHz samples from a WAV: the first channel, 16 kHz halved by averaging pairs. */
export function readWav8k(path: string): Int16Array {
  const w = readWav(path);
  if (w.rate === 8000) return w.samples;
  if (w.rate === 16000) {
    const out = new Int16Array(w.samples.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = (w.samples[2 * i]! + w.samples[2 * i + 1]!) >> 1;
    return out;
  }
  throw new Error(`${path}: ${w.rate} Hz; music on hold takes 8 or 16 kHz WAV`);
}
