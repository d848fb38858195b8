// The mapping table in a JetStream key-value bucket: one key per device name,
// the value its RegistryEntry. Every device manager watches the bucket, so a
// node that starts late (or restarts) sees every registration at once.
// Debian's nats-server 2.9 has no per-key TTL: a crashed node's entries stay
// in the bucket, and liveness (the boot id in each entry must match the
// node's current heartbeat) keeps them out of every walk until the node
// overwrites them on its next start.
//
// With node keys, every value is signed by the node it names
// ({"e": entry JSON, "s": signature}); removal is a signed tombstone, not a
// KV delete. A value that does not verify, and a raw delete or purge (which
// nobody can sign), change nothing for the readers; the owner of the key
// writes its own entry back.
//
// The bucket's stream is made by this module, not by the KV client: without
// rollup headers, purges or message deletes (the KV client allows rollups,
// and one publish with `Nats-Rollup: all`, which a node's NATS user may
// send, would leave one key of the table). And each node checks once a
// second that the stream holds at least the keys it has seen; fewer means
// something removed values without a trace (a bucket made by an older
// version, an operator's purge, lost JetStream storage), and it writes its
// own entries back at once.
import { DiscardPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { z } from 'zod';
import { RegistryEntry, encode, parseMessage } from './messages.ts';
import type { NodeIdentity, NodeKeyring } from './nodeKeys.ts';
import type { Pid } from './pid.ts';
import type { RegistryChange, RegistryStore } from './registryStore.ts';
import { retryTransient } from './retry.ts';

const SignedValue = z.strictObject({ e: z.string().max(4096), s: z.string().regex(/^[A-Za-z0-9_-]{86}$/) });
const Tombstone = z.strictObject({ name: z.string().min(1).max(64), removed: z.literal(true), node: z.string().min(1).max(64), pid: z.string().min(1).max(200) });

export interface KvSigning {
  identity: NodeIdentity;
  keyring: NodeKeyring;
  onRefused(why: string, key: string): void;
}

/** how often a node checks that the table still holds what it has seen */
const TABLE_CHECK_MS = 1000;

export class KvRegistryStore implements RegistryStore {
  private kv: KV | undefined;
  private jsm: JetStreamManager | undefined;
  /** keys this node has seen a value for: the stream holds at least this many values unless something removed them */
  private readonly seen = new Set<string>();
  private checkTimer: NodeJS.Timeout | undefined;
  /** times the table was found to have lost values and this node's entries were written back */
  heals = 0;
  private stopWatch: (() => void) | undefined;
  /** this node's own entries, written back when someone else changes or deletes them */
  private readonly own = new Map<string, RegistryEntry>();
  private readonly stopping = new AbortController();
  reads = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private readonly log: Logger,
    private readonly replicas = 1,
    private readonly signing?: KvSigning,
  ) {}

  async start(onChange: (change: RegistryChange) => void): Promise<void> {
    // Many nodes starting at once keep JetStream busy: its API calls time out, and are tried again.
    const kv = await retryTransient(
      async () => {
        await this.ensureStream();
        return new Kvm(this.nc).open(this.bucket);
      },
      { what: `opening the mapping table bucket ${this.bucket}`, log: this.log, signal: this.stopping.signal },
    );
    this.kv = kv;
    const watch = await retryTransient(() => kv.watch({ include: KvWatchInclude.LastValue }), { what: 'watching the mapping table', log: this.log, signal: this.stopping.signal });
    this.stopWatch = () => watch.stop();
    this.checkTimer = setInterval(() => void this.checkTable().catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'mapping table check failed')), TABLE_CHECK_MS);
    this.checkTimer.unref();
    void (async () => {
      for await (const e of watch) {
        this.seen.add(e.key);
        if (e.operation !== 'PUT') {
          if (this.signing) {
            // Nobody can sign a raw delete: readers keep the entry, its owner restores it.
            this.signing.onRefused('unsigned delete', e.key);
            this.restore(e.key);
          } else onChange({ op: 'delete', name: e.key, pid: undefined });
          continue;
        }
        const change = this.read(e.key, e.value);
        if (change) onChange(change);
      }
    })().catch((err: unknown) => this.log.error({ err }, 'mapping table watch ended'));
  }

  /** The bucket's stream, made without rollups, purges and deletes; an older one that allows rollups is reported. */
  private async ensureStream(): Promise<void> {
    const jsm = (this.jsm ??= await jetstreamManager(this.nc));
    const name = `KV_${this.bucket}`;
    const info = await jsm.streams.info(name).catch(async (err: unknown) => {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
      return jsm.streams
        .add({
          name,
          subjects: [`$KV.${this.bucket}.>`],
          retention: RetentionPolicy.Limits,
          storage: StorageType.File,
          max_msgs_per_subject: 1,
          discard: DiscardPolicy.New,
          allow_direct: true,
          num_replicas: this.replicas,
          allow_rollup_hdrs: false,
          deny_delete: true,
          deny_purge: true,
        })
        .catch(async (e: unknown) => {
          // another node made it first (10058: stream name already in use)
          if (e instanceof JetStreamApiError && e.code === 10058) return jsm.streams.info(name);
          throw e;
        });
    });
    if (info.config.allow_rollup_hdrs) {
      this.log.warn(
        { stream: name },
        'the mapping table stream allows rollup headers (made by an older version): one publish can wipe it; nodes rewrite their entries when it happens. Stop the cluster and delete the stream to have it made without them',
      );
    }
  }

  /** Fewer values in the stream than keys seen: something removed them; this node's entries go back at once. */
  private async checkTable(): Promise<void> {
    if (!this.jsm || this.own.size === 0) return;
    const seen = this.seen.size;
    const info = await this.jsm.streams.info(`KV_${this.bucket}`);
    if (info.state.messages >= seen) return;
    this.heals++;
    this.log.warn({ values: info.state.messages, keys_seen: seen }, 'mapping table lost values: writing this node\'s entries back');
    // The watch will show what comes back; keys nobody rewrites (gone devices) are not expected again.
    this.seen.clear();
    await Promise.all([...this.own].map(([key, entry]) => this.write(key, entry)));
  }

  private read(key: string, value: Uint8Array): RegistryChange | undefined {
    this.reads++;
    if (!this.signing) {
      const p = parseMessage(RegistryEntry, value);
      if (!p.ok || p.value.name !== key) {
        this.log.warn({ key, error: p.ok ? 'key and name differ' : p.error }, 'dropped malformed mapping table entry');
        return undefined;
      }
      return { op: 'put', entry: p.value };
    }
    const outer = parseMessage(SignedValue, value);
    const refuse = (why: string) => {
      this.signing!.onRefused(why, key);
      this.restore(key);
      return undefined;
    };
    if (!outer.ok) return refuse(`unsigned or malformed value: ${outer.error}`);
    const inner = new TextEncoder().encode(outer.value.e);
    const entry = parseMessage(RegistryEntry, inner);
    const tomb = entry.ok ? undefined : parseMessage(Tombstone, inner);
    const node = entry.ok ? entry.value.node : tomb?.ok ? tomb.value.node : undefined;
    const name = entry.ok ? entry.value.name : tomb?.ok ? tomb.value.name : undefined;
    if (!node || name !== key) return refuse('malformed entry');
    const signing = this.signing;
    // (holds the signed text and the signature only: a never-used entry should cost little more than itself)
    const { e, s } = outer.value;
    const check = () => signing.keyring.verify(node, new TextEncoder().encode(e), Buffer.from(s, 'base64url'));
    // A device's entry is checked when first used (the table of a large cluster holds far more devices than a
    // node ever allocates on); phones, rooms, removals and this node's own keys at once, since they act on arrival.
    if (entry.ok && entry.value.kind === 'media_resource' && !this.own.has(key)) {
      let verdict: boolean | undefined;
      return {
        op: 'put',
        entry: entry.value,
        verify: () => {
          if (verdict === undefined) {
            verdict = check();
            if (!verdict) refuse(`not signed by ${node}`);
          }
          return verdict;
        },
      };
    }
    if (!check()) return refuse(`not signed by ${node}`);
    if (entry.ok) return { op: 'put', entry: entry.value };
    return { op: 'delete', name: key, pid: tomb?.ok ? (tomb.value.pid as Pid) : undefined };
  }

  /** Someone else wrote or deleted one of our keys: put ours back. */
  private restore(key: string): void {
    const mine = this.own.get(key);
    if (!mine) return;
    this.log.warn({ key }, 'mapping table entry of this node changed by someone else; restoring it');
    void this.write(key, mine).catch((err: unknown) => this.log.warn({ key, err: (err as Error).message }, 'could not restore mapping table entry'));
  }

  private value(record: unknown): Uint8Array {
    if (!this.signing) return encode(record);
    const e = JSON.stringify(record);
    return encode({ e, s: this.signing.identity.sign(Buffer.from(e)).toString('base64url') });
  }

  private async write(key: string, record: unknown): Promise<void> {
    const kv = this.need();
    const value = this.value(record);
    await retryTransient(() => kv.put(key, value), { what: `writing mapping table entry ${key}`, log: this.log, signal: this.stopping.signal });
  }

  async put(entry: RegistryEntry): Promise<void> {
    this.own.set(entry.name, entry);
    await this.write(entry.name, entry);
  }

  async get(name: string): Promise<RegistryEntry | undefined> {
    const cur = await retryTransient(() => this.need().get(name), { what: `reading mapping table entry ${name}`, log: this.log, signal: this.stopping.signal });
    if (!cur || cur.operation !== 'PUT') return undefined;
    const change = this.read(name, cur.value);
    return change?.op === 'put' ? change.entry : undefined;
  }

  /** Removes the entry only if it is still this incarnation's (never a newer start's). */
  async delete(name: string, pid: Pid): Promise<void> {
    const kv = this.need();
    if (this.own.get(name)?.pid === pid) this.own.delete(name);
    const cur = await kv.get(name);
    if (!cur || cur.operation !== 'PUT') return;
    const change = this.read(name, cur.value);
    if (change?.op === 'put' && change.entry.pid !== pid) return;
    if (this.signing) {
      await kv.put(name, this.value({ name, removed: true, node: this.signing.identity.node, pid }), { previousSeq: cur.revision }).catch((err: unknown) => {
        this.log.debug({ name, err: (err as Error).message }, 'entry changed under us; left as is');
      });
      return;
    }
    await kv.delete(name, { previousSeq: cur.revision }).catch((err: unknown) => {
      this.log.debug({ name, err: (err as Error).message }, 'entry changed under us; left as is');
    });
  }

  async close(): Promise<void> {
    clearInterval(this.checkTimer);
    this.stopping.abort();
    this.stopWatch?.();
  }

  private need(): KV {
    if (!this.kv) throw new Error('mapping table store not started');
    return this.kv;
  }
}
