// Test audio: which tones a recording holds (Goertzel).
export { readWav, writeToneWav, type Pcm } from '../../src/media/wav.ts';
import type { Pcm } from '../../src/media/wav.ts';

/** Power of one frequency in a block of samples (Goertzel), normalised by the block's energy. */
export function toneShare(samples: Int16Array, rate: number, freqHz: number): number {
  const k = 2 * Math.cos((2 * Math.PI * freqHz) / rate);
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

/**
 * The longest stretch (ms) of a recording in which the tone `freqHz` was not
 * heard: 100 ms blocks, each counted as heard when loud enough and mostly
 * that tone. `from`/`to` bound the part looked at (ms from the start).
 */
export function longestGapMs(pcm: Pcm, freqHz: number, from = 0, to = Infinity): number {
  const block = Math.floor(pcm.rate / 10);
  const first = Math.floor(((from / 1000) * pcm.rate) / block);
  const last = Math.min(Math.floor(pcm.samples.length / block), Math.floor(((to / 1000) * pcm.rate) / block));
  let gap = 0;
  let longest = 0;
  for (let i = first; i < last; i++) {
    const b = pcm.samples.subarray(i * block, (i + 1) * block);
    let sum = 0;
    for (const x of b) sum += x * x;
    const heard = Math.sqrt(sum / b.length) > 300 && toneShare(b, pcm.rate, freqHz) > 0.5;
    gap = heard ? 0 : gap + 100;
    longest = Math.max(longest, gap);
  }
  return longest;
}
