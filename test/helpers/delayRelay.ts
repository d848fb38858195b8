// Latency on a TCP link where the kernel has no netem qdisc: a relay in the
// test process between a node and the nats-server that holds every chunk
// for the link's delay, each way, in order. It emulates latency only (not
// bandwidth or reordering); loss stays the iptables rules' work on the veth
// link behind it. Listens on the link's host-side address.
import { createServer, connect, type Server, type Socket } from 'node:net';

/** One direction of one connection: chunks released in order, each `delay` after it arrived. */
class DelayedPipe {
  private readonly queue: Array<{ at: number; chunk: Buffer }> = [];
  private timer: NodeJS.Timeout | undefined;
  private lastAt = 0;

  constructor(
    private readonly to: Socket,
    private readonly delayMs: () => number,
  ) {}

  push(chunk: Buffer): void {
    // Never earlier than the chunk before it: a delay lowered mid-flight must not reorder the stream.
    const at = Math.max(Date.now() + this.delayMs(), this.lastAt);
    this.lastAt = at;
    if (at <= Date.now() && this.queue.length === 0) return void this.to.write(chunk);
    this.queue.push({ at, chunk });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const now = Date.now();
        while (this.queue.length && this.queue[0]!.at <= now) this.to.write(this.queue.shift()!.chunk);
        this.schedule();
      },
      Math.max(0, this.queue[0]!.at - Date.now()),
    );
  }

  close(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

export class DelayRelay {
  /** added to each direction of every connection through this relay */
  delayMs = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(host: string, target: { host: string; port: number }): Promise<DelayRelay> {
    let relay: DelayRelay | undefined;
    const server = createServer((client) => relay!.join(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('relay has no TCP address');
    relay = new DelayRelay(server, host, addr.port);
    return relay;
  }

  private join(client: Socket, target: { host: string; port: number }): void {
    const upstream = connect(target.port, target.host);
    const delay = () => this.delayMs;
    const up = new DelayedPipe(upstream, delay);
    const down = new DelayedPipe(client, delay);
    client.on('data', (c: Buffer) => up.push(c));
    upstream.on('data', (c: Buffer) => down.push(c));
    const end = () => {
      up.close();
      down.close();
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', end);
      s.on('close', end);
    }
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}
