// A process mailbox: messages are handled strictly one at a time, in arrival
// order, even when a handler awaits. This is what makes the owning device
// process the single writer of its state.
export class Mailbox<M, R> {
  private readonly queue: Array<{ msg: M; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private running = false;

  constructor(private readonly handler: (msg: M) => R | Promise<R>) {}

  get depth(): number {
    return this.queue.length;
  }

  post(msg: M): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ msg, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      for (let item = this.queue.shift(); item; item = this.queue.shift()) {
        try {
          const r = this.handler(item.msg);
          item.resolve(r instanceof Promise ? await r : r);
        } catch (err) {
          item.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
