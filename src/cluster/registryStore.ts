// Where the cluster-wide mapping table lives. The device manager of every
// node writes its own entries and watches every phone and room, its own
// devices and those of the nodes it asks it to (watchNode). Two stores:
// BusRegistryStore (announcements over pub/sub; the embedded default) and
// KvRegistryStore (a NATS JetStream key-value bucket).
import type { RegistryEntry } from './messages.ts';
import type { Pid } from './pid.ts';

export type RegistryChange =
  /**
   * `verify`: the entry's signature is checked when the entry is first used
   * (true: it holds); without it the store checked it already
   */
  { op: 'put'; entry: RegistryEntry; verify?: () => boolean } | { op: 'delete'; name: string; pid: Pid | undefined };

export interface RegistryStore {
  /**
   * Starts watching the numbers (phones, rooms) and this node's devices;
   * onChange sees every entry already in the table, then every change.
   */
  start(onChange: (change: RegistryChange) => void): Promise<void>;
  /** Watches `node`'s devices too (idempotent); resolves once the watch is open. A store may watch everything. */
  watchNode(node: string): Promise<void>;
  put(entry: RegistryEntry): Promise<void>;
  /** The number's entry (phone, room) stored now (checked like every read), if the store keeps entries across restarts. */
  get(name: string): Promise<RegistryEntry | undefined>;
  /** Removes `entry` if the table still holds this incarnation of it. */
  delete(entry: RegistryEntry): Promise<void>;
  close(): Promise<void>;
  /** values read (and checked) from the table since start: what keeping the table costs this node */
  readonly reads: number;
}
