// The mapping table over plain pub/sub: each node announces its own entries,
// and re-announces them when a node says hello, so a node that starts late
// learns every registration. Needs no server-side state. Every node hears
// every announcement (the embedded cluster is small): watchNode has nothing to do.
import type { Logger } from 'pino';
import { claimedBy, type Bus, type Subscription } from './bus.ts';
import { RegistryEvent, encode, parseMessage, type RegistryEntry } from './messages.ts';
import { pidNode } from './pid.ts';
import type { RegistryChange, RegistryStore } from './registryStore.ts';
import type { Subjects } from './subjects.ts';

export class BusRegistryStore implements RegistryStore {
  private readonly own = new Map<string, RegistryEntry>();
  private sub: Subscription | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly subjects: Subjects,
    private readonly node: string,
    private readonly log: Logger,
  ) {}

  reads = 0;

  /** Announcements keep nothing across a restart: a restarted node has nothing to read back. */
  async get(): Promise<RegistryEntry | undefined> {
    return undefined;
  }

  async start(onChange: (change: RegistryChange) => void): Promise<void> {
    this.sub = this.bus.subscribe(this.subjects.registry, (m) => {
      const p = parseMessage(RegistryEvent, m.data);
      if (!p.ok) {
        this.log.warn({ error: p.error }, 'dropped malformed registry event');
        return;
      }
      const ev = p.value;
      // A node announces only its own entries.
      const owner = ev.op === 'register' ? ev.entry.node : ev.op === 'unregister' ? pidNode(ev.pid) : ev.node;
      if (!claimedBy(m, owner)) return;
      if (ev.op === 'register') onChange({ op: 'put', entry: ev.entry });
      else if (ev.op === 'unregister') onChange({ op: 'delete', name: ev.name, pid: ev.pid });
      else if (ev.node !== this.node) for (const e of this.own.values()) this.announce(e);
    });
    this.bus.publish(this.subjects.registry, encode({ op: 'hello', node: this.node } satisfies RegistryEvent));
  }

  async watchNode(): Promise<void> {}

  async put(entry: RegistryEntry): Promise<void> {
    this.own.set(entry.name, entry);
    this.announce(entry);
  }

  async delete({ name, pid }: RegistryEntry): Promise<void> {
    this.own.delete(name);
    this.bus.publish(this.subjects.registry, encode({ op: 'unregister', name, pid } satisfies RegistryEvent));
  }

  async close(): Promise<void> {
    this.sub?.unsubscribe();
  }

  private announce(entry: RegistryEntry): void {
    this.bus.publish(this.subjects.registry, encode({ op: 'register', entry } satisfies RegistryEvent));
  }
}
