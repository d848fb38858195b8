// Requests a node makes to itself (to one of its own device processes, to the
// other half of a call between two of its own phones) are served in place
// rather than sent round through the bus: a node cut off from the bus must
// still allocate its own devices and connect its own phones. The message is
// still copied, as the bus would, and the request keeps its deadline; no
// signature is needed for what never leaves the process (the handler sees
// no `from`, as on an unsigned bus: its own node).
import {
  BusTimeoutError,
  type Bus,
  type BusLink,
  type EventHandler,
  type RequestHandler,
  type RequestOptions,
  type Subscription,
} from './bus.ts';

export class LoopbackBus implements Bus {
  private readonly local = new Map<string, RequestHandler>();

  constructor(private readonly inner: Bus) {}

  async request(subject: string, data: Uint8Array, timeoutMs: number, opts?: RequestOptions): Promise<Uint8Array> {
    const handler = this.local.get(subject);
    if (!handler) return this.inner.request(subject, data, timeoutMs, opts);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BusTimeoutError(subject, timeoutMs)), timeoutMs);
    });
    try {
      // A later turn of the event loop, as a network would: no caller relies on synchronous delivery.
      const served = new Promise<Uint8Array>((resolve, reject) =>
        setImmediate(() =>
          Promise.resolve()
            .then(() => handler({ subject, data: data.slice() }))
            .then(resolve, reject),
        ),
      );
      return (await Promise.race([served, deadline])).slice();
    } finally {
      clearTimeout(timer);
    }
  }

  serve(subject: string, handler: RequestHandler): Subscription {
    const sub = this.inner.serve(subject, handler);
    this.local.set(subject, handler);
    return {
      unsubscribe: () => {
        if (this.local.get(subject) === handler) this.local.delete(subject);
        sub.unsubscribe();
      },
    };
  }

  publish(subject: string, data: Uint8Array): void {
    this.inner.publish(subject, data);
  }

  subscribe(subject: string, handler: EventHandler): Subscription {
    return this.inner.subscribe(subject, handler);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  link(): BusLink {
    return this.inner.link();
  }

  close(): Promise<void> {
    this.local.clear();
    return this.inner.close();
  }
}
