// The device manager's mapping table: device name -> PID for the whole
// cluster. An entry counts as registered only while its node is up with the
// same boot id, so a crashed node's devices drop out of every walk at once,
// before anyone deletes their entries.
//
// A node holds the entries of every phone and room, of its own devices and of
// the nodes it watches: those its MRGLs name (watchNodes, from the config),
// and any other whose device a walk asks for (watched from then on; that walk
// goes on to its next device). What no MRGL of this node names is never read.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Liveness } from './liveness.ts';
import type { RegistryEntry } from './messages.ts';
import type { RegistryChange, RegistryStore } from './registryStore.ts';
import { errorMessage } from '../errors.ts';

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
  /**
   * Entries whose signature is checked on first use (RegistryChange.verify):
   * until then the table keeps the entry it had, and one that fails the check
   * changes nothing.
   */
  private readonly unchecked = new Map<string, { entry: RegistryEntry; verify: () => boolean }>();

  /** entries refused because they contradict the config (a device of another node, an unknown name) */
  refused = 0;
  /** the latest refused entry per name: a config change (tandem apply) may make it right */
  private readonly refusedEntries = new Map<string, Extract<RegistryChange, { op: 'put' }>>();

  /** nodes whose devices this node's table holds (its own among them), each with its watch's initial load */
  private readonly watched = new Map<string, Promise<void>>();

  constructor(
    private readonly store: RegistryStore,
    private readonly liveness: Liveness,
    private readonly log: Logger,
    /** why an entry cannot be true (checked against the config), or undefined */
    private readonly problem: (entry: RegistryEntry) => string | undefined = () => undefined,
    /** the node a device belongs to (the config's), undefined for numbers and unknown names */
    private readonly ownerOf: (name: string) => string | undefined = () => undefined,
  ) {
    super();
  }

  /**
   * Holds the devices of these nodes from now on; resolves once the entries
   * they have in the table now are here (at once for nodes already watched).
   */
  async watchNodes(nodes: Iterable<string>): Promise<void> {
    const loads: Array<Promise<void>> = [];
    for (const n of nodes) {
      let load = this.watched.get(n);
      if (!load) {
        load = this.store.watchNode(n).catch((err: unknown) => {
          this.watched.delete(n);
          this.log.warn({ node: n, err: errorMessage(err) }, "could not watch a node's devices in the mapping table");
        });
        this.watched.set(n, load);
      }
      loads.push(load);
    }
    await Promise.all(loads);
  }

  /** nodes whose devices this node holds */
  get watchedNodes(): string[] {
    return [...this.watched.keys()];
  }

  /** Starts the table: every number, and the devices of `node` (this node). */
  start(node: string): Promise<void> {
    this.watched.set(node, Promise.resolve());
    return this.store.start((c) => this.apply(c));
  }

  async register(entry: RegistryEntry): Promise<void> {
    this.unchecked.delete(entry.name);
    this.table.set(entry.name, entry);
    await this.store.put(entry);
  }

  async unregister(entry: RegistryEntry): Promise<void> {
    if (this.unchecked.get(entry.name)?.entry.pid === entry.pid) this.unchecked.delete(entry.name);
    if (this.table.get(entry.name)?.pid === entry.pid) this.table.delete(entry.name);
    await this.store.delete(entry);
  }

  /**
   * Where `name` runs, if it is registered. A device of a node this one does
   * not watch yet is `not registered`, and (`watch`, the default) watched
   * from now on, so the next walk finds it.
   */
  lookup(name: string, { watch = true }: { watch?: boolean } = {}): Lookup {
    this.check(name);
    const entry = this.table.get(name);
    if (!entry) {
      const owner = this.ownerOf(name);
      if (owner !== undefined && !this.watched.has(owner)) {
        if (watch) void this.watchNodes([owner]);
        return {
          registered: false,
          entry,
          reason: `the devices of ${owner} are not watched here${watch ? ' yet (watched from now on)' : ''}`,
        };
      }
      return { registered: false, entry, reason: 'no entry in the mapping table' };
    }
    const boot = this.liveness.bootOf(entry.node);
    if (boot === undefined) {
      const unreachable = this.liveness.statusOf(entry.node) === 'unreachable';
      return {
        registered: false,
        entry,
        reason: unreachable ? `node ${entry.node} is unreachable` : `node ${entry.node} is down`,
      };
    }
    if (boot !== entry.boot)
      return { registered: false, entry, reason: `stale entry from an earlier start of ${entry.node}` };
    return { registered: true, entry };
  }

  entries(): IterableIterator<RegistryEntry> {
    for (const name of [...this.unchecked.keys()]) this.check(name);
    return this.table.values();
  }

  /** names in the table (entries not yet checked included) */
  get size(): number {
    let n = this.table.size;
    for (const name of this.unchecked.keys()) if (!this.table.has(name)) n++;
    return n;
  }

  /** entries received and not yet checked (their first use will) */
  get uncheckedCount(): number {
    return this.unchecked.size;
  }

  /** An entry waiting for its check is checked now: it takes its place in the table, or is dropped. */
  private check(name: string): void {
    const u = this.unchecked.get(name);
    if (!u) return;
    this.unchecked.delete(name);
    if (u.verify()) this.set(u.entry);
  }

  private set(entry: RegistryEntry): void {
    const prev = this.table.get(entry.name);
    this.table.set(entry.name, entry);
    if (prev?.pid !== entry.pid) {
      this.log.debug({ device: entry.name, pid: entry.pid }, 'registered');
      this.emit('registered', entry);
    }
  }

  /**
   * Checks the refused entries again (the config changed: a node that
   * applied it first may have published devices this node did not know).
   */
  recheck(): void {
    const again = [...this.refusedEntries.values()];
    this.refusedEntries.clear();
    // (with their signature checks: an entry refused before its check is not taken unchecked now)
    for (const change of again) this.apply(change);
  }

  private apply(c: RegistryChange): void {
    if (c.op === 'put') {
      const why = this.problem(c.entry);
      if (why) {
        this.refused++;
        this.log.warn({ device: c.entry.name, node: c.entry.node, why }, 'mapping table entry refused');
        this.refusedEntries.delete(c.entry.name);
        if (this.refusedEntries.size < MAX_REFUSED_KEPT) this.refusedEntries.set(c.entry.name, c);
        return;
      }
      this.refusedEntries.delete(c.entry.name);
      if (c.verify) this.unchecked.set(c.entry.name, { entry: c.entry, verify: c.verify });
      else {
        this.unchecked.delete(c.entry.name);
        this.set(c.entry);
      }
      return;
    }
    // (a removal is checked at once: what waits under the name is older than it)
    const waiting = this.unchecked.get(c.name);
    if (waiting && (c.pid === undefined || waiting.entry.pid === c.pid)) this.unchecked.delete(c.name);
    const prev = this.table.get(c.name);
    // An unregister from an older incarnation must not remove the newer entry.
    if (prev && (c.pid === undefined || prev.pid === c.pid)) {
      this.table.delete(c.name);
      this.log.debug({ device: c.name }, 'unregistered');
      this.emit('unregistered', c.name);
    }
  }
}
