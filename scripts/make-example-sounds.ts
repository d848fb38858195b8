// Writes the example's music-on-hold sources (examples/sounds/*.wav): gentle
// arpeggios, 8 kHz 16-bit mono, with short fades between notes.
// Run: node --import tsx scripts/make-example-sounds.ts
import { writeWav } from '../src/media/wav.ts';

function tune(path: string, notesHz: number[], seconds: number): void {
  const rate = 8000;
  const n = seconds * rate;
  const noteLen = rate / 2;
  const samples = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const f = notesHz[Math.floor(i / noteLen) % notesHz.length]!;
    const t = i % noteLen;
    const envelope = Math.min(1, t / 200, (noteLen - t) / 200);
    samples[i] = Math.round(9000 * envelope * Math.sin((2 * Math.PI * f * i) / rate));
  }
  writeWav(path, samples, rate);
}

tune('examples/sounds/default.wav', [523.25, 659.25, 783.99, 659.25], 8);
tune('examples/sounds/exec.wav', [440, 554.37, 659.25, 880, 659.25, 554.37], 12);
