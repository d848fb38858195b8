// A node's media plane over worker threads (nodes.<n>.rtp.workers), so its
// capacity grows with its cores: each worker runs a MediaHost of its own
// (its 20 ms clock, its share of the node's RTP port range). A conference
// room lives on one worker (chosen by the room's name, so every seat of it
// lands there); other sessions go to the worker with the fewest. A worker
// that dies takes only its own sessions: each is reported lost to its device
// process (which releases it and tells the holder, who re-homes the call as
// for a dead node), and the worker is started again on the same ports.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { LegQuality, MediaRequest } from '../cluster/messages.ts';
import type { ResourceSpec } from '../config/model.ts';
import {
  MediaError,
  type Endpoint,
  type LinkKeys,
  type MediaEvent,
  type MediaPlane,
  type MediaSession,
  type MediaStatus,
  type SessionView,
} from './mediaPlane.ts';
import { newLegCounters, type LegCounters } from './rtpLeg.ts';
import type { SessionKinds } from './sessionKind.ts';
import type { FromWorker, MediaThreadSettings, SessionOpened, ToWorker, WorkerSetup } from './workerProtocol.ts';

export interface MediaWorkersOptions extends MediaThreadSettings {
  count: number;
  /** the worker thread's module (a MediaHost with the device kinds: devices/mediaWorker.ts) */
  entry: URL;
  /** the kinds of device, for where their sessions go (a room's on one worker) */
  kinds: SessionKinds;
  /** the node's whole range, shared out */
  portMin: number;
  portMax: number;
  log: Logger;
  /** how soon a dead worker is started again */
  restartMs?: number;
}

type Distribute<T> = T extends unknown ? Omit<T, 'rid'> : never;

interface Slot {
  index: number;
  worker: Worker;
  alive: boolean;
  sessions: Map<number, { onEvent: (e: MediaEvent) => void }>;
  pending: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>;
  counters: LegCounters;
  started: number;
  /** settles when the worker has loaded its code (or ended before that) */
  loaded: Promise<void>;
  isLoaded: boolean;
  markLoaded: (err?: Error) => void;
}

/** How long a node waits at start for its media workers to load (a busy machine compiling them is slow, a broken build never ends). */
const READY_WITHIN_MS = 60_000;

/**
 * The file a worker starts: built, the entry itself; from source (.ts under
 * tsx), a small .mjs that registers tsx in the worker thread first (a
 * worker does not inherit the parent's loader).
 */
const workerFileFor = (entry: URL) =>
  entry.pathname.endsWith('.ts') ? new URL('./tsxWorker.mjs', import.meta.url) : entry;

const hash = (s: string) => {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h;
};

export class MediaWorkers implements MediaPlane {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private nextRid = 1;
  private closing = false;
  /** what dead workers had counted (metrics only go up) */
  private readonly retired = newLegCounters();
  /** restart delay per worker (grows while a worker keeps dying at start) */
  private readonly backoff = new Map<number, number>();
  onRoom: ((device: string, room: string, open: boolean) => void) | undefined;

  constructor(private readonly o: MediaWorkersOptions) {
    if (o.count < 1) throw new MediaError('a media plane on workers needs at least one worker');
    // Each worker gets an even-aligned share of the range (RTP on even ports, RTCP above).
    const share = Math.floor((o.portMax - o.portMin + 1) / o.count / 2) * 2;
    if (share < 4) throw new MediaError(`rtp.ports ${o.portMin}-${o.portMax} is too small for ${o.count} workers`);
    for (let i = 0; i < o.count; i++)
      this.slots.push(
        this.spawn(i, o.portMin + i * share, i === o.count - 1 ? o.portMax : o.portMin + (i + 1) * share - 1),
      );
  }

  /**
   * Every worker has loaded its code. Until then a session waits in the
   * worker's queue for as long as loading takes (seconds on a busy machine),
   * longer than a device's answer may take.
   */
  async ready(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new MediaError(`media workers not ready within ${READY_WITHIN_MS / 1000} s`)),
        READY_WITHIN_MS,
      );
    });
    try {
      await Promise.race([Promise.all(this.slots.map((s) => s.loaded)), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The workers (for the admin view and tests). */
  get threads(): readonly Worker[] {
    return this.slots.map((s) => s.worker);
  }

  get counters(): LegCounters {
    const sum = { ...this.retired };
    for (const s of this.slots) for (const k of Object.keys(sum) as Array<keyof LegCounters>) sum[k] += s.counters[k];
    return sum;
  }

  private spawn(index: number, portMin: number, portMax: number): Slot {
    const setup: WorkerSetup = {
      index,
      address: this.o.address,
      portMin,
      portMax,
      mediaDir: this.o.mediaDir,
      cname: this.o.cname,
      latch: this.o.latch,
      logLevel: this.o.log.level,
    };
    const worker = new Worker(workerFileFor(this.o.entry), { workerData: { ...setup, entry: this.o.entry.href } });
    let markLoaded: (err?: Error) => void = () => undefined;
    const loaded = new Promise<void>((resolve, reject) => (markLoaded = (err) => (err ? reject(err) : resolve())));
    loaded.catch(() => undefined); // only ready() cares, and it is told
    const slot: Slot = {
      index,
      worker,
      alive: true,
      sessions: new Map(),
      pending: new Map(),
      counters: newLegCounters(),
      started: Date.now(),
      loaded,
      isLoaded: false,
      markLoaded,
    };
    worker.on('message', (m: FromWorker) => this.fromWorker(slot, m));
    worker.on('error', (err) => this.o.log.error({ worker: index, err: err.message }, 'media worker failed'));
    worker.on('exit', (code) => this.died(slot, code, portMin, portMax));
    this.o.log.debug({ worker: index, ports: `${portMin}-${portMax}` }, 'media worker starting');
    return slot;
  }

  private fromWorker(slot: Slot, m: FromWorker): void {
    switch (m.op) {
      case 'reply': {
        const p = slot.pending.get(m.rid);
        slot.pending.delete(m.rid);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(new MediaError(m.error));
        return;
      }
      case 'event':
        slot.sessions.get(m.id)?.onEvent(m.event);
        return;
      case 'room':
        this.onRoom?.(m.device, m.room, m.open);
        return;
      case 'counters':
        slot.counters = m.counters;
        return;
      case 'ready':
        this.o.log.info({ worker: slot.index, load_ms: Date.now() - slot.started }, 'media worker ready');
        slot.isLoaded = true;
        slot.markLoaded();
        return;
    }
  }

  /** A worker ended: unless the node is stopping, its sessions are lost and it starts again. */
  private died(slot: Slot, code: number, portMin: number, portMax: number): void {
    slot.alive = false;
    slot.markLoaded(new MediaError(`media worker ${slot.index} ended (exit code ${code}) before it was ready`));
    for (const k of Object.keys(this.retired) as Array<keyof LegCounters>) this.retired[k] += slot.counters[k];
    slot.counters = newLegCounters();
    for (const p of slot.pending.values()) p.reject(new MediaError(`media worker ${slot.index} ended`));
    slot.pending.clear();
    if (this.closing) return;
    const lost = [...slot.sessions.values()];
    slot.sessions.clear();
    this.o.log.error(
      { worker: slot.index, code, sessions: lost.length },
      'media worker died: its sessions are lost, starting it again',
    );
    for (const s of lost) s.onEvent({ type: 'lost', reason: `media worker ${slot.index} died` });
    // A worker that cannot even start (dies within a second) is retried less and less often.
    const quick = Date.now() - slot.started < 1000;
    const delay = quick
      ? Math.min(30_000, (this.backoff.get(slot.index) ?? this.o.restartMs ?? 200) * 2)
      : (this.o.restartMs ?? 200);
    this.backoff.set(slot.index, delay);
    setTimeout(() => {
      if (!this.closing) this.slots[slot.index] = this.spawn(slot.index, portMin, portMax);
    }, delay).unref();
  }

  private ask<T>(slot: Slot, m: Distribute<ToWorker>): Promise<T> {
    if (!slot.alive) return Promise.reject(new MediaError(`media worker ${slot.index} is not running`));
    const rid = this.nextRid++;
    return new Promise<T>((resolve, reject) => {
      slot.pending.set(rid, { resolve: resolve as (v: unknown) => void, reject });
      slot.worker.postMessage({ ...m, rid });
    });
  }

  private tell(slot: Slot, m: Distribute<ToWorker>): void {
    if (slot.alive) slot.worker.postMessage(m);
  }

  /** A room's worker: the same for every seat and link of it while that worker lives. */
  private roomSlot(device: string, room: string): Slot {
    const alive = this.slots.filter((s) => s.alive);
    const home = this.slots[hash(`${device}/${room}`) % this.slots.length]!;
    if (home.alive || alive.length === 0) return home;
    return alive[hash(`${device}/${room}`) % alive.length]!;
  }

  private leastBusy(): Slot {
    const alive = this.slots.filter((s) => s.alive);
    if (alive.length === 0) throw new MediaError('no media worker is running');
    // A worker started again after a crash is still loading: its queue would hold a session for as long as that takes.
    const loaded = alive.filter((s) => s.isLoaded);
    return (loaded.length > 0 ? loaded : alive).reduce((a, b) => (b.sessions.size < a.sessions.size ? b : a));
  }

  async session(
    spec: ResourceSpec,
    req: MediaRequest,
    onEvent: (e: MediaEvent) => void = () => undefined,
  ): Promise<MediaSession> {
    const slot = this.o.kinds[spec.type]?.rooms ? this.roomSlot(spec.name, req.room ?? 'default') : this.leastBusy();
    const id = this.nextId++;
    slot.sessions.set(id, { onEvent });
    let opened: SessionOpened;
    try {
      opened = await this.ask<SessionOpened>(slot, { op: 'session', id, spec, req });
    } catch (err) {
      slot.sessions.delete(id);
      throw err;
    }
    let closed = false;
    return {
      endpoints: () => opened.endpoints,
      update: (r) => this.tell(slot, { op: 'update', id, req: r }),
      ...(opened.digits
        ? {
            playDigit: (leg: 0 | 1, digit: string, durationMs: number) =>
              this.tell(slot, { op: 'digit', id, leg, digit, durationMs }),
          }
        : {}),
      ...(opened.durationMs !== undefined ? { durationMs: opened.durationMs } : {}),
      quality: () => (closed ? Promise.resolve([]) : this.ask<LegQuality[]>(slot, { op: 'quality', id })),
      close: () => {
        if (closed) return;
        closed = true;
        slot.sessions.delete(id);
        this.tell(slot, { op: 'close', id });
      },
    };
  }

  linkRoom(
    device: string,
    room: string,
    peer: string,
    remote?: Endpoint,
    srtp?: LinkKeys,
  ): Promise<Endpoint & { key?: string }> {
    return this.ask<Endpoint & { key?: string }>(this.roomSlot(device, room), {
      op: 'link',
      device,
      room,
      peer,
      remote,
      srtp,
    });
  }

  async describe(): Promise<SessionView[]> {
    const views = await Promise.all(
      this.slots.filter((s) => s.alive).map((s) => this.ask<SessionView[]>(s, { op: 'describe' }).catch(() => [])),
    );
    return views.flat();
  }

  async status(): Promise<MediaStatus> {
    const each = await Promise.all(
      this.slots.map(async (s) => {
        const st = s.alive ? await this.ask<MediaStatus>(s, { op: 'status' }).catch(() => undefined) : undefined;
        return {
          worker: s.index,
          alive: st !== undefined,
          ...(st ?? {
            ports_in_use: 0,
            rooms: 0,
            moh_sources: 0,
            sessions: 0,
            clock: { ticks: 0, late: 0, maxLagMs: 0, skipped: 0 },
          }),
        };
      }),
    );
    const sum = (f: (x: MediaStatus) => number) => each.reduce((n, x) => n + f(x), 0);
    return {
      ports_in_use: sum((x) => x.ports_in_use),
      rooms: sum((x) => x.rooms),
      moh_sources: sum((x) => x.moh_sources),
      sessions: sum((x) => x.sessions),
      clock: {
        ticks: sum((x) => x.clock.ticks),
        late: sum((x) => x.clock.late),
        maxLagMs: Math.max(0, ...each.map((x) => x.clock.maxLagMs)),
        skipped: sum((x) => x.clock.skipped),
      },
      workers: each,
    };
  }

  close(): void {
    this.closing = true;
    for (const s of this.slots) void s.worker.terminate();
  }
}
