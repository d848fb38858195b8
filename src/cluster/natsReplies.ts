// Request/reply over one reply subscription per connection: every request
// gets a token under this connection's inbox, and one subscription routes the
// replies back. The client's own request() builds two Error objects (stack
// traces) and a subscription entry per call; on the allocation hot path that
// was most of the cost (see BENCHMARKS.md).
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { BusTimeoutError, NoRespondersError } from './bus.ts';

interface Pending {
  subject: string;
  resolve(data: Uint8Array): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class NatsReplies {
  private readonly prefix: string;
  private readonly pending = new Map<number, Pending>();
  private readonly sub: Subscription;
  private next = 1;

  constructor(
    private readonly nc: NatsConnection,
    inboxPrefix?: string,
  ) {
    this.prefix = createInbox(inboxPrefix);
    this.sub = nc.subscribe(`${this.prefix}.*`, {
      callback: (err, msg) => {
        if (!err) this.onReply(msg);
      },
    });
  }

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const token = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new BusTimeoutError(subject, timeoutMs));
      }, timeoutMs);
      this.pending.set(token, { subject, resolve, reject, timer });
      try {
        this.nc.publish(subject, data, { reply: `${this.prefix}.${token}` });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(token);
        reject(err as Error);
      }
    });
  }

  close(): void {
    this.sub.unsubscribe();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`connection closed before ${p.subject} replied`));
    }
    this.pending.clear();
  }

  private onReply(msg: Msg): void {
    const token = Number(msg.subject.slice(this.prefix.length + 1));
    const p = this.pending.get(token);
    if (!p) return; // late: already timed out
    this.pending.delete(token);
    clearTimeout(p.timer);
    // The server answers a request nobody serves with an empty 503 status message.
    if (msg.data.length === 0 && msg.headers?.code === 503) p.reject(new NoRespondersError(p.subject));
    else p.resolve(msg.data);
  }
}
