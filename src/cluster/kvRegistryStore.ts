// The mapping table in a JetStream key-value bucket: one key per device name,
// the value its RegistryEntry. Every device manager watches the bucket, so a
// node that starts late (or restarts) sees every registration at once.
// Debian's nats-server 2.9 has no per-key TTL: a crashed node's entries stay
// in the bucket, and liveness (the boot id in each entry must match the
// node's current heartbeat) keeps them out of every walk until the node
// overwrites them on its next start.
import { Kvm, KvWatchInclude, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { RegistryEntry, encode, parseMessage } from './messages.ts';
import type { Pid } from './pid.ts';
import type { RegistryChange, RegistryStore } from './registryStore.ts';

export class KvRegistryStore implements RegistryStore {
  private kv: KV | undefined;
  private stopWatch: (() => void) | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private readonly log: Logger,
    private readonly replicas = 1,
  ) {}

  async start(onChange: (change: RegistryChange) => void): Promise<void> {
    const kv = await new Kvm(this.nc).create(this.bucket, { history: 1, replicas: this.replicas });
    this.kv = kv;
    const watch = await kv.watch({ include: KvWatchInclude.LastValue });
    this.stopWatch = () => watch.stop();
    void (async () => {
      for await (const e of watch) {
        if (e.operation !== 'PUT') {
          onChange({ op: 'delete', name: e.key, pid: undefined });
          continue;
        }
        const p = parseMessage(RegistryEntry, e.value);
        if (!p.ok || p.value.name !== e.key) {
          this.log.warn({ key: e.key, error: p.ok ? 'key and name differ' : p.error }, 'dropped malformed mapping table entry');
          continue;
        }
        onChange({ op: 'put', entry: p.value });
      }
    })().catch((err: unknown) => this.log.error({ err }, 'mapping table watch ended'));
  }

  async put(entry: RegistryEntry): Promise<void> {
    await this.need().put(entry.name, encode(entry));
  }

  /** Deletes the entry only if it is still this incarnation's (never a newer start's). */
  async delete(name: string, pid: Pid): Promise<void> {
    const kv = this.need();
    const cur = await kv.get(name);
    if (!cur || cur.operation !== 'PUT') return;
    const p = parseMessage(RegistryEntry, cur.value);
    if (p.ok && p.value.pid !== pid) return;
    await kv.delete(name, { previousSeq: cur.revision }).catch((err: unknown) => {
      this.log.debug({ name, err: (err as Error).message }, 'entry changed under us; left as is');
    });
  }

  async close(): Promise<void> {
    this.stopWatch?.();
  }

  private need(): KV {
    if (!this.kv) throw new Error('mapping table store not started');
    return this.kv;
  }
}
