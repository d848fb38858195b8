// This node's view of how busy every media resource device is, for the
// least_used policy. It is eventually consistent (fed by load reports and
// allocation replies); the device process stays the authority, and a device
// that is fuller than we thought just answers "unavailable".
import type { Logger } from 'pino';
import { claimedBy, type Bus, type Subscription } from '../cluster/bus.ts';
import { LoadReport, encode, parseMessage } from '../cluster/messages.ts';
import type { Subjects } from '../cluster/subjects.ts';

interface Load {
  active: number;
  capacity: number;
  version: number;
}

export class LoadView {
  private readonly loads = new Map<string, Load>();
  private readonly dirty = new Map<string, Load>();
  private flushTimer: NodeJS.Timeout | undefined;
  private sub: Subscription | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly subjects: Subjects,
    private readonly node: string,
    private readonly log: Logger,
    /** how long local changes are gathered before one report goes out */
    private readonly flushMs = 20,
  ) {}

  start(): void {
    this.sub = this.bus.subscribe(this.subjects.load, (m) => {
      const p = parseMessage(LoadReport, m.data);
      if (!p.ok) return this.log.warn({ error: p.error }, 'dropped malformed load report');
      if (p.value.node === this.node || !claimedBy(m, p.value.node)) return;
      for (const l of p.value.loads) this.observe(l.name, l.active, l.capacity, l.version);
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** A local device process changed its active count: note it and report it soon. */
  reportLocal(name: string, active: number, capacity: number, version: number): void {
    const l = { active, capacity, version };
    this.loads.set(name, l);
    this.dirty.set(name, l);
    this.flushTimer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** What an allocation reply told us. */
  observe(name: string, active: number, capacity: number, version: number): void {
    const known = this.loads.get(name);
    // Versions only move forward within one life of a device; forgetNode() clears them when its node goes down.
    if (known && known.version >= version) return;
    this.loads.set(name, { active, capacity, version });
  }

  /** Forgets what we knew of a device whose node went down (its next life counts from zero). */
  forgetNode(devices: Iterable<string>): void {
    for (const d of devices) this.loads.delete(d);
  }

  ratio(name: string): number {
    const l = this.loads.get(name);
    return l && l.capacity > 0 ? l.active / l.capacity : 0;
  }

  private flush(): void {
    this.flushTimer = undefined;
    const loads = [...this.dirty].map(([name, l]) => ({ name, ...l }));
    this.dirty.clear();
    if (loads.length) this.bus.publish(this.subjects.load, encode({ node: this.node, loads } satisfies LoadReport));
  }
}
