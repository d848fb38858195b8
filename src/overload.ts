// How late this process's event loop runs: one timer that measures its own
// drift. A node whose loop runs late again and again is close to missing
// its liveness probes (and being declared down while alive), so its edges shed
// new work (SIP 503) until the loop is on time again. One late tick (a
// garbage collection, a WebAssembly compile) is not overload: it takes two
// of the last three.
export class EventLoopLag {
  private timer: NodeJS.Timeout | undefined;
  private last = performance.now();
  /** whether each of the last three ticks was late */
  private recent = [false, false, false];
  private at = 0;

  constructor(
    /** lateness (ms) past which a tick counts as late */
    private readonly thresholdMs = 200,
    private readonly periodMs = 50,
  ) {}

  start(): this {
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.recent[this.at] = now - this.last - this.periodMs > this.thresholdMs;
      this.at = (this.at + 1) % this.recent.length;
      this.last = now;
    }, this.periodMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Two of the last three ticks late, or one and the one due now already late. */
  get overloaded(): boolean {
    const late = this.recent.filter(Boolean).length;
    const lateNow = performance.now() - this.last - this.periodMs > this.thresholdMs;
    return late >= 2 || (late >= 1 && lateNow);
  }
}
