// How late this process's event loop runs: one timer that measures its own
// drift. A node whose loop runs late is close to missing its heartbeats
// (and being declared down while alive), so its edges shed new work (SIP
// 503, admin 503) until the loop is on time again.
export class EventLoopLag {
  private timer: NodeJS.Timeout | undefined;
  private last = performance.now();
  /** the worst lateness seen in the current window, and until when it counts */
  private worst = 0;
  private worstUntil = 0;
  /** times new work was shed because of lag */
  shed = 0;

  constructor(
    /** lateness (ms) past which the process counts as overloaded */
    private readonly thresholdMs = 200,
    private readonly periodMs = 50,
    /** how long one late tick keeps the process overloaded */
    private readonly holdMs = 1000,
  ) {}

  start(): this {
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = now - this.last - this.periodMs;
      this.last = now;
      if (late > this.thresholdMs) {
        this.worst = Math.max(late, now < this.worstUntil ? this.worst : 0);
        this.worstUntil = now + this.holdMs;
      }
    }, this.periodMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Whether the loop ran late recently. Also true when the lag is still being lived (the timer itself is late). */
  get overloaded(): boolean {
    const now = performance.now();
    return now < this.worstUntil || now - this.last - this.periodMs > this.thresholdMs;
  }
}
