// One inbox subject per node carries every request to the device processes it
// hosts (one subscription instead of one per device). The post office routes
// an incoming envelope to the process named by its PID, and sends envelopes to
// PIDs on any node.
import type { Logger } from 'pino';
import type { Bus, BusMessage, RequestOptions, Subscription } from './bus.ts';
import { ProcessError, type HostedProcess } from './deviceProcess.ts';
import { Envelope, ReplyEnvelope, encode, parseMessage } from './messages.ts';
import { pidNode, type Pid } from './pid.ts';
import type { Subjects } from './subjects.ts';
import { TandemError } from '../errors.ts';

/** The remote process answered with an error (unknown PID, bad request...). */
export class RemoteProcessError extends TandemError {
  constructor(
    readonly pid: Pid,
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${pid}: ${message}`, options);
  }
}

export class PostOffice {
  private readonly processes = new Map<Pid, HostedProcess>();
  private sub: Subscription | undefined;
  dropped = 0;

  constructor(
    private readonly bus: Bus,
    private readonly subjects: Subjects,
    private readonly node: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.sub = this.bus.serve(this.subjects.inbox(this.node), (m) => this.receive(m));
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  host(proc: HostedProcess): void {
    this.processes.set(proc.pid, proc);
  }

  evict(pid: Pid): void {
    this.processes.delete(pid);
  }

  local(pid: Pid): HostedProcess | undefined {
    return this.processes.get(pid);
  }

  get hosted(): Iterable<HostedProcess> {
    return this.processes.values();
  }

  /**
   * Sends a request to a device process wherever it runs. Resolves with the
   * process's reply body (unvalidated: the caller knows its shape);
   * rejects with BusTimeoutError, NoRespondersError or RemoteProcessError.
   */
  async call(pid: Pid, body: unknown, timeoutMs: number, opts?: RequestOptions): Promise<unknown> {
    const raw = await this.bus.request(this.subjects.inbox(pidNode(pid)), encode({ to: pid, body }), timeoutMs, opts);
    const reply = parseMessage(ReplyEnvelope, raw);
    if (!reply.ok) throw new RemoteProcessError(pid, 'bad_reply', `malformed reply: ${reply.error}`);
    if (!reply.value.ok) throw new RemoteProcessError(pid, reply.value.code, reply.value.error);
    return reply.value.body;
  }

  private async receive(m: BusMessage): Promise<Uint8Array> {
    const env = parseMessage(Envelope, m.data);
    if (!env.ok) {
      this.dropped++;
      this.log.warn({ error: env.error }, 'dropped malformed message on inbox');
      return encode({ ok: false, code: 'bad_request', error: env.error });
    }
    const proc = this.processes.get(env.value.to);
    if (!proc) {
      // A stale PID (the device was restarted or moved): the sender moves on.
      return encode({ ok: false, code: 'no_such_process', error: `no process ${env.value.to} on ${this.node}` });
    }
    try {
      const body = await proc.receive(env.value.body, m.from && { ...m.from, sealed: m.sealed === true });
      return encode({ ok: true, body });
    } catch (err) {
      if (err instanceof ProcessError) {
        if (err.code === 'bad_request') {
          this.dropped++;
          this.log.warn({ to: env.value.to, error: err.message }, 'dropped malformed request');
        }
        if (err.code === 'forbidden') m.refuse?.(err.message);
        return encode({ ok: false, code: err.code, error: err.message });
      }
      this.log.error({ err, to: env.value.to }, 'device process failed on a message');
      return encode({ ok: false, code: 'internal', error: 'device process failed' });
    }
  }
}
