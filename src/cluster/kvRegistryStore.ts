// The mapping table in a JetStream key-value bucket: `numbers.<name>`, one
// key per phone and meet-me room, and `devices.<node>`, one key per node
// holding the PIDs of all its media resources (DeviceList). A node watches
// `numbers.>`, its own devices and those of the nodes its MRGLs name
// (watchNode), not the whole table: in a cluster of many nodes the table
// holds far more devices than one node ever allocates on, and reading all of
// it made every node's work grow with the cluster's size (K nodes x every
// entry). One key per node rather than per device: a node's start is one
// write for its devices, not one per device (JetStream took minutes to store
// 100,000 device keys), and a reader checks one signature per node. A node
// that starts late (or restarts) sees what it watches at once. Keys of older
// versions (a bare name, `devices.<node>.<name>`) are in no watched range and
// are ignored.
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
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DeviceList, MAX_DEVICES_PER_NODE, RegistryEntry, encode, parseMessage } from './messages.ts';
import type { NodeIdentity, NodeKeyring } from './nodeKeys.ts';
import type { Pid } from './pid.ts';
import type { RegistryChange, RegistryStore } from './registryStore.ts';
import { retryTransient } from './retry.ts';
import { errorMessage, TandemError } from '../errors.ts';

/** The entry name a key stands for (its last part). */
const nameOf = (key: string) => key.slice(key.lastIndexOf('.') + 1);

/** a signed value: a number's entry (a few hundred bytes) or a node's device list (about 100 bytes a device) */
const SignedValue = z.strictObject({ e: z.string().max(1_000_000), s: z.string().regex(/^[A-Za-z0-9_-]{86}$/) });
const Tombstone = z.strictObject({
  name: z.string().min(1).max(64),
  removed: z.literal(true),
  node: z.string().min(1).max(64),
  pid: z.string().min(1).max(200),
});

/** The key of an entry: a device in its node's list (watched per node), a number (phone, room) for everyone. */
export function tableKey(entry: Pick<RegistryEntry, 'kind' | 'name' | 'node'>): string {
  return entry.kind === 'media_resource' ? devicesOf(entry.node) : `numbers.${entry.name}`;
}

/** The key of one node's device list, and the range of every number. */
export const devicesOf = (node: string) => `devices.${node}`;
const NUMBERS = 'numbers.>';

/** The node a device list key is of, or undefined for a number's key. */
const listNode = (key: string) => (key.startsWith('devices.') ? key.slice('devices.'.length) : undefined);

/** Thrown when a node's devices do not fit in one value of the bus. */
export class DeviceListTooLargeError extends TandemError {}

export interface KvSigning {
  identity: NodeIdentity;
  keyring: NodeKeyring;
  onRefused(why: string, key: string): void;
}

/** longest wait for a newly watched range's entries to arrive (then its walk goes on without the stragglers) */
const INITIAL_LOAD_MS = 2000;
/** how often a node checks that the table still holds what it has seen */
const TABLE_CHECK_MS = 1000;

export class KvRegistryStore implements RegistryStore {
  private kv: KV | undefined;
  private jsm: JetStreamManager | undefined;
  /** keys this node has seen a value for: the stream holds at least this many values unless something removed them */
  private readonly seen = new Set<string>();
  private checkTimer: NodeJS.Timeout | undefined;
  private checkSoon: NodeJS.Timeout | undefined;
  /** which own key the next check reads back */
  private sampleAt = 0;
  /** values in the stream at the last check */
  private valuesAtCheck = 0;
  /** times the table was found to have lost values and this node's entries were written back */
  heals = 0;
  /** the key ranges watched, each with its watch's stop */
  private readonly watches = new Map<string, () => void>();
  private onChange: ((change: RegistryChange) => void) | undefined;
  /** this node's own numbers' entries by key, written back when someone else changes or deletes them */
  private readonly own = new Map<string, RegistryEntry>();
  /** this node's own devices by name: the list under devices.<node> */
  private readonly ownDevices = new Map<string, RegistryEntry>();
  /** whether this node has written its device list (then it is one of its keys, even when empty) */
  private listWritten = false;
  /** the write of the device list that has not started yet (changes made until it starts go with it) */
  private nextListWrite: Promise<void> | undefined;
  /** the write of the device list under way */
  private listWriting: Promise<void> = Promise.resolve();
  /** each watched node's devices as last read, by name: what the next list is compared with */
  private readonly lists = new Map<string, Map<string, RegistryEntry>>();
  private readonly stopping = new AbortController();
  reads = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    /** the node this store writes for: its own devices are always watched */
    private readonly node: string,
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
    this.onChange = onChange;
    await Promise.all([this.watch(NUMBERS), this.watch(devicesOf(this.node))]);
    this.checkTimer = setInterval(
      () =>
        void this.checkTable().catch((err: unknown) =>
          this.log.debug({ err: errorMessage(err) }, 'mapping table check failed'),
        ),
      TABLE_CHECK_MS,
    );
    this.checkTimer.unref();
  }

  /**
   * Watches a node's devices too (idempotent); resolves once the entries
   * already in the table have arrived (or after INITIAL_LOAD_MS), so a walk
   * that waits for it finds them.
   */
  async watchNode(node: string): Promise<void> {
    await this.watch(devicesOf(node), true);
  }

  /** The key ranges this store watches. */
  get watching(): string[] {
    return [...this.watches.keys()];
  }

  private async watch(range: string, initialLoad = false): Promise<void> {
    const kv = this.need();
    const onChange = this.onChange!;
    if (this.watches.has(range) || this.stopping.signal.aborted) return;
    this.watches.set(range, () => undefined);
    // How many keys the range holds now (one value each): the watch has delivered what was there once it gave as many.
    const expected = initialLoad
      ? await this.jsm!.streams.info(`KV_${this.bucket}`, { subjects_filter: `$KV.${this.bucket}.${range}` })
          .then((info) => Object.keys(info.state.subjects ?? {}).length)
          .catch(() => 0)
      : 0;
    let loaded = () => {};
    const initial = expected > 0 ? new Promise<void>((resolve) => (loaded = resolve)) : undefined;
    const w = await retryTransient(() => kv.watch({ key: range, include: KvWatchInclude.LastValue }), {
      what: `watching ${range} of the mapping table`,
      log: this.log,
      signal: this.stopping.signal,
    }).catch((err: unknown) => {
      this.watches.delete(range);
      throw err;
    });
    if (this.stopping.signal.aborted) {
      w.stop();
      return;
    }
    this.watches.set(range, () => w.stop());
    let received = 0;
    void (async () => {
      for await (const e of w) {
        this.seen.add(e.key);
        if (e.operation !== 'PUT') {
          if (this.signing) {
            // Nobody can sign a raw delete: readers keep the entry, its owner restores it.
            this.signing.onRefused('unsigned delete', e.key);
            this.restore(e.key);
          } else if (listNode(e.key) !== undefined) for (const c of this.readList(e.key, undefined)) onChange(c);
          else onChange({ op: 'delete', name: nameOf(e.key), pid: undefined });
        } else {
          for (const change of this.read(e.key, e.value)) onChange(change);
        }
        // (after the entry is taken: whoever waits for the range finds it)
        if (++received === expected) loaded();
      }
    })().catch((err: unknown) => this.log.error({ err, range }, 'mapping table watch ended'));
    if (initial) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([initial, new Promise<void>((resolve) => (timer = setTimeout(resolve, INITIAL_LOAD_MS)))]);
      clearTimeout(timer);
    }
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

  /** This node's keys: its numbers' and its device list's. */
  private ownKeys(): string[] {
    const keys = [...this.own.keys()];
    if (this.listWritten || this.ownDevices.size > 0) keys.push(devicesOf(this.node));
    return keys;
  }

  /**
   * Something removed values without a trace when the stream holds fewer
   * values than keys this node has seen, or than at the last check (nothing
   * legitimate lowers it: removals are written as tombstones, deletes and
   * purges are refused), or when one of this node's own keys (one per check,
   * in turn: a wipe takes them all) reads back empty. Then this node's entries
   * go back at once. (The counts alone miss it: a node sees only the ranges it
   * watches, and another node's rewrite may bring the total back above what
   * this one has seen while its own keys are gone.)
   */
  private async checkTable(): Promise<void> {
    const keys = this.ownKeys();
    if (!this.jsm || !this.kv || keys.length === 0) return;
    const seen = this.seen.size;
    const info = await this.jsm.streams.info(`KV_${this.bucket}`);
    const values = info.state.messages;
    const before = this.valuesAtCheck;
    this.valuesAtCheck = values;
    let missing: string | undefined;
    if (values >= seen && values >= before) {
      const key = keys[this.sampleAt++ % keys.length]!;
      const cur = await this.kv.get(key);
      if (cur?.operation === 'PUT' || !this.ownKeys().includes(key)) return;
      missing = key;
    }
    this.heals++;
    this.log.warn(
      { values, values_before: before, keys_seen: seen, missing },
      "mapping table lost values: writing this node's entries back",
    );
    // The watch will show what comes back; keys nobody rewrites (gone devices) are not expected again.
    this.seen.clear();
    await Promise.all([
      ...[...this.own].map(([key, entry]) => this.write(key, entry)),
      this.listWritten ? this.writeList() : undefined,
    ]);
  }

  /** The changes a value of `key` makes (none when it is refused). */
  private read(key: string, value: Uint8Array): RegistryChange[] {
    this.reads++;
    if (listNode(key) !== undefined) return this.readSignedList(key, value);
    if (!this.signing) {
      const p = parseMessage(RegistryEntry, value);
      if (!p.ok || tableKey(p.value) !== key) {
        this.log.warn({ key, error: p.ok ? 'key and name differ' : p.error }, 'dropped malformed mapping table entry');
        return [];
      }
      return [{ op: 'put', entry: p.value }];
    }
    const outer = parseMessage(SignedValue, value);
    if (!outer.ok) return this.refuse(`unsigned or malformed value: ${outer.error}`, key);
    const inner = new TextEncoder().encode(outer.value.e);
    const entry = parseMessage(RegistryEntry, inner);
    const tomb = entry.ok ? undefined : parseMessage(Tombstone, inner);
    const node = entry.ok ? entry.value.node : tomb?.ok ? tomb.value.node : undefined;
    const name = entry.ok ? entry.value.name : tomb?.ok ? tomb.value.name : undefined;
    // The key names the entry, so a value cannot move to another number; devices are only in lists.
    if (
      !node ||
      !name ||
      (entry.ok && entry.value.kind === 'media_resource') ||
      tableKey({ kind: 'phone', name, node }) !== key
    )
      return this.refuse('malformed entry', key);
    // Phones, rooms and removals are checked at once: they act on arrival.
    if (!this.verifies(node, outer.value)) return this.refuse(`not signed by ${node}`, key);
    if (entry.ok) return [{ op: 'put', entry: entry.value }];
    return [{ op: 'delete', name, pid: tomb?.ok ? (tomb.value.pid as Pid) : undefined }];
  }

  private verifies(node: string, { e, s }: { e: string; s: string }): boolean {
    return this.signing!.keyring.verify(node, new TextEncoder().encode(e), Buffer.from(s, 'base64url'));
  }

  private refuse(why: string, key: string): [] {
    this.signing?.onRefused(why, key);
    this.restore(key);
    return [];
  }

  /** A node's device list, signed (or plain without node keys). */
  private readSignedList(key: string, value: Uint8Array): RegistryChange[] {
    const node = listNode(key)!;
    if (!this.signing) {
      const p = parseMessage(DeviceList, value);
      if (!p.ok || p.value.node !== node) {
        this.log.warn({ key, error: p.ok ? 'key and node differ' : p.error }, 'dropped malformed mapping table entry');
        return [];
      }
      return this.readList(key, p.value);
    }
    const outer = parseMessage(SignedValue, value);
    if (!outer.ok) return this.refuse(`unsigned or malformed value: ${outer.error}`, key);
    const list = parseMessage(DeviceList, new TextEncoder().encode(outer.value.e));
    // The key names the signer: a list cannot move to another node's key.
    if (!list.ok || list.value.node !== node)
      return this.refuse(list.ok ? 'list of another node' : `malformed device list: ${list.error}`, key);
    // Checked when one of its devices is first used (the table of a large cluster holds far more devices than a node
    // allocates on), one check for the whole list; at once when it removes devices or is this node's own.
    let verdict: boolean | undefined;
    const verify = () => {
      if (verdict === undefined) {
        verdict = this.verifies(node, outer.value);
        if (!verdict) this.refuse(`not signed by ${node}`, key);
      }
      return verdict;
    };
    const names = new Set(list.value.devices.map((d) => d.name));
    const removes = [...(this.lists.get(node)?.keys() ?? [])].some((name) => !names.has(name));
    if ((removes || node === this.node) && !verify()) return [];
    return this.readList(key, list.value, node === this.node ? undefined : verify);
  }

  /** What changed between `node`'s last list and this one (undefined: the key is gone). */
  private readList(key: string, list: DeviceList | undefined, verify?: () => boolean): RegistryChange[] {
    const node = listNode(key)!;
    const before = this.lists.get(node) ?? new Map<string, RegistryEntry>();
    const now = new Map<string, RegistryEntry>();
    const changes: RegistryChange[] = [];
    for (const d of list?.devices ?? []) {
      const entry: RegistryEntry = {
        name: d.name,
        kind: 'media_resource',
        ...(d.type ? { type: d.type } : {}),
        pid: d.pid,
        node,
        boot: list!.boot,
      };
      now.set(d.name, entry);
      if (before.get(d.name)?.pid !== d.pid) changes.push(verify ? { op: 'put', entry, verify } : { op: 'put', entry });
    }
    for (const [name, gone] of before) if (!now.has(name)) changes.push({ op: 'delete', name, pid: gone.pid });
    this.lists.set(node, now);
    return changes;
  }

  /** Someone else wrote or deleted one of our keys: put ours back. */
  private restore(key: string): void {
    const mine = key === devicesOf(this.node) ? (this.listWritten ? 'list' : undefined) : this.own.get(key);
    if (!mine) return;
    this.log.warn({ key }, 'mapping table entry of this node changed by someone else; restoring it');
    const back = mine === 'list' ? this.writeList() : this.write(key, mine);
    void back.catch((err: unknown) =>
      this.log.warn({ key, err: errorMessage(err) }, 'could not restore mapping table entry'),
    );
  }

  private value(record: unknown): Uint8Array {
    if (!this.signing) return encode(record);
    const e = JSON.stringify(record);
    return encode({ e, s: this.signing.identity.sign(Buffer.from(e)).toString('base64url') });
  }

  private async write(key: string, record: unknown): Promise<void> {
    const kv = this.need();
    const value = this.value(record);
    const max = this.nc.info?.max_payload;
    if (max !== undefined && value.length > max - 1024) {
      throw new DeviceListTooLargeError(
        `the mapping table value ${key} is ${value.length} bytes, more than the bus carries (max_payload ${max}): give this node fewer devices, or raise the servers' max_payload`,
      );
    }
    await retryTransient(() => kv.put(key, value), {
      what: `writing mapping table entry ${key}`,
      log: this.log,
      signal: this.stopping.signal,
    });
  }

  /**
   * Writes this node's device list; resolves once a write that includes
   * every change made before the call is stored. Changes that come while a
   * write is under way go together in the next one (a node's start is one
   * or two writes, not one per device).
   */
  private writeList(): Promise<void> {
    if (this.nextListWrite) return this.nextListWrite;
    const next = this.listWriting
      .catch(() => undefined)
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => {
        this.nextListWrite = undefined;
        if (this.ownDevices.size > MAX_DEVICES_PER_NODE)
          throw new DeviceListTooLargeError(
            `${this.node} has ${this.ownDevices.size} devices; a node may have at most ${MAX_DEVICES_PER_NODE}`,
          );
        const list: DeviceList = {
          node: this.node,
          // (one process's devices share its boot; an empty list's boot says nothing)
          boot: [...this.ownDevices.values()][0]?.boot ?? '0',
          devices: [...this.ownDevices.values()].map((e) => ({
            name: e.name,
            ...(e.type ? { type: e.type } : {}),
            pid: e.pid,
          })),
        };
        this.listWritten = true;
        return (this.listWriting = this.write(devicesOf(this.node), list));
      });
    this.nextListWrite = next;
    return next;
  }

  async put(entry: RegistryEntry): Promise<void> {
    if (entry.kind === 'media_resource') {
      if (entry.node !== this.node) throw new Error(`${this.node} cannot write ${entry.node}'s device ${entry.name}`);
      this.ownDevices.set(entry.name, entry);
      await this.writeList();
    } else {
      const key = tableKey(entry);
      this.own.set(key, entry);
      await this.write(key, entry);
    }
    // The stream's size is sampled soon after this node's writes too, so a loss right after them is seen.
    this.checkSoon ??= setTimeout(() => {
      this.checkSoon = undefined;
      void this.checkTable().catch(() => undefined);
    }, 100);
  }

  /** A number's entry (a phone, a room) stored now, checked like every read. */
  async get(name: string): Promise<RegistryEntry | undefined> {
    const key = tableKey({ kind: 'phone', name, node: '' });
    const cur = await retryTransient(() => this.need().get(key), {
      what: `reading mapping table entry ${key}`,
      log: this.log,
      signal: this.stopping.signal,
    });
    if (cur?.operation !== 'PUT') return undefined;
    const change = this.read(key, cur.value)[0];
    return change?.op === 'put' ? change.entry : undefined;
  }

  /** Removes the entry only if it is still this incarnation's (never a newer start's). */
  async delete(gone: RegistryEntry): Promise<void> {
    const { name, pid } = gone;
    if (gone.kind === 'media_resource') {
      if (this.ownDevices.get(name)?.pid !== pid) return;
      this.ownDevices.delete(name);
      await this.writeList();
      return;
    }
    const key = tableKey(gone);
    const kv = this.need();
    if (this.own.get(key)?.pid === pid) this.own.delete(key);
    const cur = await kv.get(key);
    if (cur?.operation !== 'PUT') return;
    const change = this.read(key, cur.value)[0];
    if (change?.op === 'put' && change.entry.pid !== pid) return;
    if (this.signing) {
      await kv
        .put(key, this.value({ name, removed: true, node: this.signing.identity.node, pid }), {
          previousSeq: cur.revision,
        })
        .catch((err: unknown) => {
          this.log.debug({ key, err: errorMessage(err) }, 'entry changed under us; left as is');
        });
      return;
    }
    await kv.delete(key, { previousSeq: cur.revision }).catch((err: unknown) => {
      this.log.debug({ key, err: errorMessage(err) }, 'entry changed under us; left as is');
    });
  }

  async close(): Promise<void> {
    clearInterval(this.checkTimer);
    clearTimeout(this.checkSoon);
    this.stopping.abort();
    for (const stop of this.watches.values()) stop();
    this.watches.clear();
  }

  private need(): KV {
    if (!this.kv) throw new Error('mapping table store not started');
    return this.kv;
  }
}
