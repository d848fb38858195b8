// 8 <-> 16 kHz by a factor of two: a 31-tap half-band low-pass (windowed
// sinc, Blackman window, cut at 4 kHz) before dropping every other sample,
// or after inserting a zero between samples. Each direction keeps its own
// history so 20 ms frames join without clicks.

const TAPS = 31;
const MID = (TAPS - 1) / 2;
const H = Float64Array.from({ length: TAPS }, (_, i) => {
  const k = i - MID;
  const sinc = k === 0 ? 0.5 : Math.sin((Math.PI * k) / 2) / (Math.PI * k);
  const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (TAPS - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (TAPS - 1));
  return sinc * w;
});
const GAIN = 1 / H.reduce((a, b) => a + b, 0);

const clip = (v: number) => (v > 32767 ? 32767 : v < -32768 ? -32768 : Math.round(v));

/** The filter's input: the last TAPS-1 samples of the previous block, then the new block. */
class FilterInput {
  private readonly hist = new Float64Array(TAPS - 1);
  readonly buf: Float64Array;

  constructor(maxBlock: number) {
    this.buf = new Float64Array(TAPS - 1 + maxBlock);
  }

  /** Starts a block; new samples go at buf[TAPS - 1 + i]. */
  begin(): Float64Array {
    this.buf.set(this.hist, 0);
    return this.buf;
  }

  /** The low-pass output at position i of the block. */
  at(i: number): number {
    let acc = 0;
    for (let k = 0; k < TAPS; k++) acc += H[k]! * this.buf[i + k]!;
    return acc * GAIN;
  }

  /** Ends a block of n samples: keeps its tail for the next one. */
  end(n: number): void {
    this.hist.set(this.buf.subarray(n, n + TAPS - 1));
  }
}

/** 16 kHz -> 8 kHz. */
export class Downsampler {
  private readonly input = new FilterInput(2048);

  /** n input samples (even) -> n/2 output samples; returns the output count. */
  process(input: Int16Array, n: number, out: Int16Array): number {
    const b = this.input.begin();
    for (let i = 0; i < n; i++) b[TAPS - 1 + i] = input[i]!;
    let o = 0;
    for (let i = 1; i < n; i += 2) out[o++] = clip(this.input.at(i));
    this.input.end(n);
    return o;
  }
}

/** 8 kHz -> 16 kHz. */
export class Upsampler {
  private readonly input = new FilterInput(4096);

  /** n input samples -> 2n output samples (zeros between them, then the low-pass, times two); returns the output count. */
  process(input: Int16Array, n: number, out: Int16Array): number {
    const b = this.input.begin();
    for (let i = 0; i < n; i++) {
      b[TAPS - 1 + 2 * i] = input[i]!;
      b[TAPS - 1 + 2 * i + 1] = 0;
    }
    const m = 2 * n;
    for (let i = 0; i < m; i++) out[i] = clip(2 * this.input.at(i));
    this.input.end(m);
    return m;
  }
}
