// An archive of each node's records on the cluster's NATS (a JetStream
// stream, one subject per node): every node writes its own, any node reads
// any node's, so a node that is down does not take its records with it.
// Written by a queue that keeps the order and tries again while the bus is
// away (bounded: past MAX_QUEUED the oldest unwritten go, said in the log);
// the stream is made without deletes and purges, and keeps each node's
// newest `maxPerNode` records for `maxAgeMs`. Each node's NATS user may
// publish only its own subject (natsPermissions.ts).
import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';

/** records queued for the archive at most, while the bus is away */
const MAX_QUEUED = 10_000;
/** records read from one node's subject in one search at most */
export const MAX_SCAN = 100_000;
const FETCH_BATCH = 1000;

/** Where a node's records go and are read back: JetStream over NATS, or nothing (the embedded bus). */
export interface RecordArchive {
  /** queues one record of this node (never throws: a failed write is tried again) */
  put(data: Uint8Array): void;
  /** `node`'s records from `sinceMs` on (all when undefined), oldest first; `partial` when MAX_SCAN cut the read short */
  read(node: string, sinceMs: number | undefined): Promise<{ records: Uint8Array[]; partial: boolean }>;
  /** writes what is queued (or gives up after a while) */
  flush(): Promise<void>;
  close(): void;
}

export function archiveStreamName(cluster: string, kind: string): string {
  return `tandem_${cluster}_${kind}`;
}

export class JetStreamArchive implements RecordArchive {
  private readonly queue: Uint8Array[] = [];
  private writing: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private dropped = 0;
  private closed = false;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly o: {
      nc: NatsConnection;
      /** the stream's name (archiveStreamName) */
      stream: string;
      /** subjects: `<prefix>.<node>` */
      prefix: string;
      node: string;
      maxAgeMs: number;
      maxPerNode: number;
      replicas?: number | undefined;
      log: Logger;
    },
  ) {}

  put(data: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(data);
    if (this.queue.length > MAX_QUEUED) {
      this.queue.shift();
      if (this.dropped++ % 1000 === 0)
        this.o.log.warn(
          { dropped: this.dropped },
          'record archive unreachable for long: oldest unwritten records dropped',
        );
    }
    this.kick();
  }

  async flush(): Promise<void> {
    const deadline = Date.now() + 5000;
    while (this.queue.length && Date.now() < deadline && !this.closed) {
      this.kick();
      await (this.writing ?? new Promise((r) => setTimeout(r, 100)));
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
  }

  async read(node: string, sinceMs: number | undefined): Promise<{ records: Uint8Array[]; partial: boolean }> {
    await this.open();
    const subject = `${this.o.prefix}.${node}`;
    const c = await this.js!.consumers.get(this.o.stream, {
      // (one subject as a string: nats-server 2.9, Debian's, has no filter_subjects list)
      filter_subjects: subject,
      ...(sinceMs === undefined
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(sinceMs).toISOString() }),
    });
    const records: Uint8Array[] = [];
    if ((await c.info(true)).num_pending === 0) return { records, partial: false };
    for (;;) {
      const batch = await c.fetch({ max_messages: FETCH_BATCH, expires: 2000 });
      let n = 0;
      let last = false;
      for await (const m of batch) {
        n++;
        records.push(m.data);
        if (m.info.pending === 0) last = true;
      }
      if (last || n === 0) return { records, partial: false };
      if (records.length >= MAX_SCAN) return { records, partial: true };
    }
  }

  private kick(): void {
    if (this.writing || this.closed || !this.queue.length) return;
    this.writing = this.write().finally(() => {
      this.writing = undefined;
    });
  }

  /** Writes the queue in order; on a failure waits and tries again (the bus may be away). */
  private async write(): Promise<void> {
    try {
      await this.open();
      while (this.queue.length && !this.closed) {
        await this.js!.publish(`${this.o.prefix}.${this.o.node}`, this.queue[0]!);
        this.queue.shift();
      }
    } catch (err) {
      this.ready = undefined;
      this.o.log.warn(
        { err: errorMessage(err), queued: this.queue.length },
        'record archive write failed: trying again',
      );
      clearTimeout(this.retry);
      this.retry = setTimeout(() => this.kick(), 2000);
      this.retry.unref();
    }
  }

  /** The stream, made when missing (without deletes and purges). */
  private open(): Promise<void> {
    this.ready ??= (async () => {
      this.jsm ??= await jetstreamManager(this.o.nc);
      this.js ??= jetstream(this.o.nc);
      await this.jsm.streams.info(this.o.stream).catch(async (err: unknown) => {
        if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
        return this.jsm!.streams.add({
          name: this.o.stream,
          subjects: [`${this.o.prefix}.*`],
          retention: RetentionPolicy.Limits,
          storage: StorageType.File,
          max_age: this.o.maxAgeMs * 1_000_000,
          max_msgs_per_subject: this.o.maxPerNode,
          discard: DiscardPolicy.Old,
          num_replicas: this.o.replicas ?? 1,
          deny_delete: true,
          deny_purge: true,
        });
      });
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }
}
