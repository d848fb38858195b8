// The embedded bus: every call manager of an in-process cluster attaches a
// MemoryBus to one MemoryHub. Payloads are copied and delivered on a later
// turn of the event loop, as a network would, so code that works here does
// not rely on shared objects or synchronous delivery.
import {
  BusTimeoutError,
  NoRespondersError,
  type Bus,
  type BusLink,
  type BusMessage,
  type EventHandler,
  type RequestHandler,
  type Subscription,
} from './bus.ts';

interface Server {
  bus: MemoryBus;
  handler: RequestHandler;
}
interface Listener {
  bus: MemoryBus;
  handler: EventHandler;
}

export class MemoryHub {
  private readonly servers = new Map<string, Server>();
  private readonly listeners = new Map<string, Set<Listener>>();

  /** @internal */ addServer(subject: string, server: Server): Subscription {
    if (this.servers.has(subject)) throw new Error(`subject ${subject} is already served`);
    this.servers.set(subject, server);
    return { unsubscribe: () => this.servers.get(subject) === server && this.servers.delete(subject) };
  }

  /** @internal */ addListener(subject: string, l: Listener): Subscription {
    let set = this.listeners.get(subject);
    if (!set) this.listeners.set(subject, (set = new Set()));
    set.add(l);
    return { unsubscribe: () => set.delete(l) };
  }

  /** @internal */ server(subject: string): Server | undefined {
    return this.servers.get(subject);
  }

  /** @internal */ listenersOf(subject: string): Iterable<Listener> {
    return this.listeners.get(subject) ?? [];
  }
}

export class MemoryBus implements Bus {
  private readonly subs = new Set<Subscription>();
  private closed = false;
  /** Fault injection: a cut cable. Nothing goes in or out. */
  partitioned = false;
  /** Fault injection: a hung node. Requests to this bus's servers vanish; events still flow. */
  dropRequests = false;

  private readonly opened = Date.now();

  constructor(private readonly hub: MemoryHub) {}

  /** In memory the client always thinks it is connected: `partitioned` is a cut cable it cannot see. */
  link(): BusLink {
    return { connected: !this.closed, since: this.opened };
  }

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error('bus closed'));
    const server = this.hub.server(subject);
    if (!server) return Promise.reject(new NoRespondersError(subject));
    const copy = data.slice();
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BusTimeoutError(subject, timeoutMs)), timeoutMs);
      const lost = this.partitioned || server.bus.partitioned || server.bus.dropRequests;
      if (lost) return;
      setImmediate(() => {
        Promise.resolve()
          .then(() => server.handler({ subject, data: copy }))
          .then(
            (reply) => {
              clearTimeout(timer);
              if (!this.partitioned && !server.bus.partitioned) resolve(reply.slice());
            },
            (err: unknown) => {
              clearTimeout(timer);
              reject(err instanceof Error ? err : new Error(String(err)));
            },
          );
      });
    });
  }

  serve(subject: string, handler: RequestHandler): Subscription {
    return this.track(this.hub.addServer(subject, { bus: this, handler }));
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.closed || this.partitioned) return;
    for (const l of this.hub.listenersOf(subject)) {
      if (l.bus.partitioned) continue;
      const msg: BusMessage = { subject, data: data.slice() };
      setImmediate(() => l.handler(msg));
    }
  }

  subscribe(subject: string, handler: EventHandler): Subscription {
    return this.track(this.hub.addListener(subject, { bus: this, handler }));
  }

  async flush(): Promise<void> {
    // Subscriptions take effect at once; deliveries already queued run first.
    await new Promise((r) => setImmediate(r));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.subs) s.unsubscribe();
    this.subs.clear();
  }

  private track(sub: Subscription): Subscription {
    this.subs.add(sub);
    return {
      unsubscribe: () => {
        sub.unsubscribe();
        this.subs.delete(sub);
      },
    };
  }
}
