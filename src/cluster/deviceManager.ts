// The device manager's mapping table: device name -> PID for the whole
// cluster. An entry counts as registered only while its node is up with the
// same boot id, so a crashed node's devices drop out of every walk at once,
// before anyone deletes their entries.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Liveness } from './liveness.ts';
import type { RegistryEntry } from './messages.ts';
import type { RegistryChange, RegistryStore } from './registryStore.ts';

export type Lookup =
  | { registered: true; entry: RegistryEntry }
  | { registered: false; entry: RegistryEntry | undefined; reason: string };

export interface DeviceManagerEvents {
  registered: [entry: RegistryEntry];
  unregistered: [name: string];
}

/** refused entries kept for recheck(): bounded, a forger cannot grow it past this */
const MAX_REFUSED_KEPT = 10_000;

export class DeviceManager extends EventEmitter<DeviceManagerEvents> {
  private readonly table = new Map<string, RegistryEntry>();

  /** entries refused because they contradict the config (a device of another node, an unknown name) */
  refused = 0;
  /** the latest refused entry per name: a config change (tandem apply) may make it right */
  private readonly refusedEntries = new Map<string, RegistryEntry>();

  constructor(
    private readonly store: RegistryStore,
    private readonly liveness: Liveness,
    private readonly log: Logger,
    /** why an entry cannot be true (checked against the config), or undefined */
    private readonly problem: (entry: RegistryEntry) => string | undefined = () => undefined,
  ) {
    super();
  }

  start(): Promise<void> {
    return this.store.start((c) => this.apply(c));
  }

  async register(entry: RegistryEntry): Promise<void> {
    this.table.set(entry.name, entry);
    await this.store.put(entry);
  }

  async unregister(entry: RegistryEntry): Promise<void> {
    if (this.table.get(entry.name)?.pid === entry.pid) this.table.delete(entry.name);
    await this.store.delete(entry.name, entry.pid);
  }

  lookup(name: string): Lookup {
    const entry = this.table.get(name);
    if (!entry) return { registered: false, entry, reason: 'no entry in the mapping table' };
    const boot = this.liveness.bootOf(entry.node);
    if (boot === undefined) {
      const unreachable = this.liveness.statusOf(entry.node) === 'unreachable';
      return { registered: false, entry, reason: unreachable ? `node ${entry.node} is unreachable` : `node ${entry.node} is down` };
    }
    if (boot !== entry.boot) return { registered: false, entry, reason: `stale entry from an earlier start of ${entry.node}` };
    return { registered: true, entry };
  }

  entries(): IterableIterator<RegistryEntry> {
    return this.table.values();
  }

  get size(): number {
    return this.table.size;
  }

  /**
   * Checks the refused entries again (the config changed: a node that
   * applied it first may have published devices this node did not know).
   */
  recheck(): void {
    const again = [...this.refusedEntries.values()];
    this.refusedEntries.clear();
    for (const entry of again) this.apply({ op: 'put', entry });
  }

  private apply(c: RegistryChange): void {
    if (c.op === 'put') {
      const why = this.problem(c.entry);
      if (why) {
        this.refused++;
        this.log.warn({ device: c.entry.name, node: c.entry.node, why }, 'mapping table entry refused');
        this.refusedEntries.delete(c.entry.name);
        if (this.refusedEntries.size < MAX_REFUSED_KEPT) this.refusedEntries.set(c.entry.name, c.entry);
        return;
      }
      this.refusedEntries.delete(c.entry.name);
      const prev = this.table.get(c.entry.name);
      this.table.set(c.entry.name, c.entry);
      if (prev?.pid !== c.entry.pid) {
        this.log.debug({ device: c.entry.name, pid: c.entry.pid }, 'registered');
        this.emit('registered', c.entry);
      }
      return;
    }
    const prev = this.table.get(c.name);
    // An unregister from an older incarnation must not remove the newer entry.
    if (prev && (c.pid === undefined || prev.pid === c.pid)) {
      this.table.delete(c.name);
      this.log.debug({ device: c.name }, 'unregistered');
      this.emit('unregistered', c.name);
    }
  }
}
