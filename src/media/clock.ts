// The 20 ms media clock of a node: one timer drives every conference mix and
// every music-on-hold stream. It keeps to wall time (a late tick is followed
// by catch-up ticks) and counts how late ticks ran, for the benchmarks.
export type TickHandler = () => void;

export const PTIME_MS = 20;

export class MediaClock {
  private readonly handlers = new Set<TickHandler>();
  private timer: NodeJS.Timeout | undefined;
  private due = 0;
  readonly stats = { ticks: 0, late: 0, maxLagMs: 0, skipped: 0 };
  /** how long the last 4096 ticks took to run every handler, in ms */
  readonly durations = new Float64Array(4096);
  /** how late each of the last 4096 ticks started, in ms (the real-time criterion of the benchmarks) */
  readonly lags = new Float64Array(4096);

  add(h: TickHandler): void {
    this.handlers.add(h);
    if (!this.timer) {
      this.due = performance.now() + PTIME_MS;
      this.schedule();
    }
  }

  remove(h: TickHandler): void {
    this.handlers.delete(h);
    if (this.handlers.size === 0) this.stop();
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
    while (now >= this.due && catchUp < 5) {
      const lag = now - this.due;
      if (lag > PTIME_MS) this.stats.late++;
      if (lag > this.stats.maxLagMs) this.stats.maxLagMs = lag;
      const t0 = performance.now();
      for (const h of this.handlers) h();
      this.durations[this.stats.ticks % this.durations.length] = performance.now() - t0;
      this.lags[this.stats.ticks % this.lags.length] = lag;
      this.stats.ticks++;
      this.due += PTIME_MS;
      catchUp++;
      now = performance.now();
    }
    if (now >= this.due) {
      // Too far behind: skip rather than burst (the skipped ticks are counted: their packets are never sent).
      this.stats.skipped += Math.floor((now - this.due) / PTIME_MS) + 1;
      this.due = now + PTIME_MS;
    }
    if (this.handlers.size) this.schedule();
    else this.timer = undefined;
  }
}
