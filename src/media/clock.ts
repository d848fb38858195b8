// The 20 ms media clock of a node: one timer drives every conference mix and
// every music-on-hold stream. It keeps to wall time (a late tick is followed
// by catch-up ticks) and counts how late ticks ran, for the benchmarks.
export type TickHandler = () => void;

export const PTIME_MS = 20;

export class MediaClock {
  private readonly handlers = new Set<TickHandler>();
  private timer: NodeJS.Timeout | undefined;
  private due = 0;
  readonly stats = { ticks: 0, late: 0, maxLagMs: 0 };
  /** how long the last 4096 ticks took to run every handler, in ms */
  readonly durations = new Float64Array(4096);

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
      this.stats.ticks++;
      this.due += PTIME_MS;
      catchUp++;
      now = performance.now();
    }
    if (now >= this.due) this.due = now + PTIME_MS; // too far behind: skip rather than burst
    if (this.handlers.size) this.schedule();
    else this.timer = undefined;
  }
}
