// Live updates for consoles: server-sent events over one response per
// console, one snapshot of the cluster a second shared by all of them (a
// snapshot costs one status request per node, whatever the number of
// consoles). Bounded: past MAX_STREAMS a new console is refused with 503;
// one token holds at most PER_TOKEN of them, and viewers together leave
// OPERATOR_RESERVE for operators, so a viewer's token cannot lock the
// operators' consoles out.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AdminPrincipal } from './tokens.ts';
import { errorMessage } from '../errors.ts';

const TICK_MS = 1000;
const MAX_STREAMS = 16;
const PER_TOKEN = 4;
const OPERATOR_RESERVE = 4;

export class LiveStream {
  private readonly streams = new Map<FastifyReply, AdminPrincipal | undefined>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly snapshot: () => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  subscribe(req: FastifyRequest, reply: FastifyReply): void {
    const who = req.principal;
    const held = [...this.streams.values()];
    const mine = held.filter((p) => p?.name === who?.name).length;
    const viewers = held.filter((p) => p?.role !== 'operator').length;
    const refuse = (why: string) => void reply.code(503).header('retry-after', '5').send({ error: why });
    if (this.streams.size >= MAX_STREAMS)
      return refuse(`${MAX_STREAMS} consoles already follow this node; retry later`);
    if (mine >= PER_TOKEN)
      return refuse(`token "${who?.name}" already follows this node ${PER_TOKEN} times; close one`);
    if (who?.role !== 'operator' && viewers >= MAX_STREAMS - OPERATOR_RESERVE)
      return refuse(`the consoles left are kept for operators; retry later`);
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    reply.raw.write(': tandem live stream\n\n');
    this.streams.set(reply, who);
    req.raw.once('close', () => {
      this.streams.delete(reply);
      if (!this.streams.size) this.pause();
    });
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), TICK_MS);
      void this.tick();
    }
  }

  close(): void {
    this.pause();
    for (const r of this.streams.keys()) r.raw.end();
    this.streams.clear();
  }

  private pause(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.busy) return; // a slow cluster: skip a tick rather than pile requests up
    this.busy = true;
    try {
      const frame = `event: snapshot\ndata: ${JSON.stringify(await this.snapshot())}\n\n`;
      for (const r of this.streams.keys()) r.raw.write(frame);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'console snapshot failed');
    } finally {
      this.busy = false;
    }
  }
}
