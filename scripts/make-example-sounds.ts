// Writes the example's music-on-hold sources and announcement prompts
// (examples/sounds/*.wav): gentle arpeggios and short tone cadences (a
// stand-in for recorded speech), 8 kHz 16-bit mono, with short fades
// between notes.
// Run: node --import tsx scripts/make-example-sounds.ts
import { writeWav } from '../src/media/wav.ts';

function tune(path: string, notesHz: number[], seconds: number, noteSeconds = 0.5): void {
  const rate = 8000;
  const n = seconds * rate;
  const noteLen = Math.round(rate * noteSeconds);
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
// Prompts: three notes each, falling (no resource), low-high-low (unknown number), repeated (unavailable).
tune('examples/sounds/prompt-no-resource.wav', [880, 698.46, 523.25], 1.5);
tune('examples/sounds/prompt-unknown-number.wav', [440, 880, 440], 1.5);
tune('examples/sounds/prompt-unavailable.wav', [659.25, 659.25, 659.25], 1.5);
// The entry tone of a conference: a short rising chime.
tune('examples/sounds/prompt-conference-entry.wav', [659.25, 987.77], 0.6, 0.3);
