// The 20 ms media clock of a media thread: one timer drives every conference
// mix and every music-on-hold and prompt stream. The 20 ms are cut into
// PHASES sub-ticks and each handler runs in one of them, every 20 ms: a
// thousand streams are not all sent in one burst at the top of the tick
// (each stream still gets a packet exactly every 20 ms, at its own phase),
// so no packet waits behind the whole node's sends. It keeps to wall time (a
// late sub-tick is followed by catch-up sub-ticks) and counts how late each
// ran, for the benchmarks.
export type TickHandler = () => void;

export const PTIME_MS = 20;
/** sub-ticks per 20 ms */
export const PHASES = 4;
const STEP_MS = PTIME_MS / PHASES;

export class MediaClock {
  /** the handlers of each phase */
  private readonly phases = Array.from({ length: PHASES }, () => new Set<TickHandler>());
  private readonly phaseOf = new Map<TickHandler, number>();
  private timer: NodeJS.Timeout | undefined;
  private due = 0;
  private next = 0;
  /** ticks: sub-ticks run (PHASES per 20 ms) */
  readonly stats = { ticks: 0, late: 0, maxLagMs: 0, skipped: 0 };
  /** how long the last 4096 sub-ticks took to run their handlers, in ms */
  readonly durations = new Float64Array(4096);
  /** how late each of the last 4096 sub-ticks started, in ms (the real-time criterion of the benchmarks) */
  readonly lags = new Float64Array(4096);

  /** Runs `h` every 20 ms, in `phase` (default: the phase with the fewest handlers). */
  add(h: TickHandler, phase?: number): void {
    if (this.phaseOf.has(h)) return;
    const p = phase ?? this.phases.reduce((best, s, i) => (s.size < this.phases[best]!.size ? i : best), 0);
    this.phases[p % PHASES]!.add(h);
    this.phaseOf.set(h, p % PHASES);
    if (!this.timer) {
      this.due = performance.now() + STEP_MS;
      this.schedule();
    }
  }

  remove(h: TickHandler): void {
    const p = this.phaseOf.get(h);
    if (p === undefined) return;
    this.phaseOf.delete(h);
    this.phases[p]!.delete(h);
    if (this.phaseOf.size === 0) this.stop();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.run(), Math.max(0, this.due - performance.now()));
  }

  private run(): void {
    let now = performance.now();
    let catchUp = 0;
    while (now >= this.due && catchUp < 5 * PHASES) {
      const lag = now - this.due;
      if (lag > PTIME_MS) this.stats.late++;
      if (lag > this.stats.maxLagMs) this.stats.maxLagMs = lag;
      const t0 = performance.now();
      for (const h of this.phases[this.next]!) h();
      this.next = (this.next + 1) % PHASES;
      this.durations[this.stats.ticks % this.durations.length] = performance.now() - t0;
      this.lags[this.stats.ticks % this.lags.length] = lag;
      this.stats.ticks++;
      this.due += STEP_MS;
      catchUp++;
      now = performance.now();
    }
    if (now >= this.due) {
      // Too far behind: skip rather than burst (the skipped sub-ticks are counted: their packets are never sent).
      const skipped = Math.floor((now - this.due) / STEP_MS) + 1;
      this.stats.skipped += skipped;
      this.next = (this.next + skipped) % PHASES;
      this.due += skipped * STEP_MS;
    }
    if (this.phaseOf.size) this.schedule();
    else this.timer = undefined;
  }
}
