// Where the cluster-wide mapping table lives. The device manager of every
// node writes its own devices' entries and watches everyone's. Two stores:
// BusRegistryStore (announcements over pub/sub; the embedded default) and
// KvRegistryStore (a NATS JetStream key-value bucket).
import type { RegistryEntry } from './messages.ts';
import type { Pid } from './pid.ts';

export type RegistryChange =
  /**
   * `verify`: the entry's signature is checked when the entry is first used
   * (true: it holds); without it the store checked it already
   */
  | { op: 'put'; entry: RegistryEntry; verify?: () => boolean }
  | { op: 'delete'; name: string; pid: Pid | undefined };

export interface RegistryStore {
  /** Starts watching; onChange sees every entry already in the table, then every change. */
  start(onChange: (change: RegistryChange) => void): Promise<void>;
  put(entry: RegistryEntry): Promise<void>;
  /** The entry stored under `name` now (checked like every read), if the store keeps entries across restarts. */
  get(name: string): Promise<RegistryEntry | undefined>;
  delete(name: string, pid: Pid): Promise<void>;
  close(): Promise<void>;
  /** values read (and checked) from the table since start: what keeping the table costs this node */
  readonly reads: number;
}
