// The node's own queue of SIP datagrams, so that what waits is visible and
// ordered as the node wants rather than hidden in the kernel's socket buffer.
//
// - Known sources (a registered phone's binding) first: a UDP flood must not
//   take their turn. Strangers wait in a bounded queue served a few per turn
//   of the event loop; when they send faster than the node can answer, the
//   excess is dropped here, cheaply, instead of in the kernel's buffer where
//   it would take the phones' datagrams with it.
// - Every datagram carries the time it was read, so the SIP layer knows how
//   long it waited: a new call that waited longer than the node may keep a
//   caller waiting is refused at once (503) instead of being taken on late
//   (admission control: the node finishes calls at its capacity and refuses
//   the rest, rather than collapsing into retransmissions and timeouts).
// - Known datagrams are handled for at most a few milliseconds per turn, then
//   the socket is read again: the backlog stays here, timestamped, and not in
//   the kernel where its age cannot be seen.
import { performance } from 'node:perf_hooks';

const { eventLoopUtilization } = performance;

/** strangers' datagrams waiting; beyond this they are dropped (counted) */
const STRANGERS = 4096;
/** known sources' datagrams waiting (seconds of a busy node's work); beyond this dropped (counted) */
const KNOWN = 65_536;
/**
 * Strangers handled per turn of the event loop before the socket is read
 * again. libuv reads at most 32 datagrams of a socket per turn: handling
 * fewer strangers than that per turn keeps reading ahead of a flood (the
 * queue fills and the excess is dropped here), so the kernel's buffer never
 * overflows with a phone's datagram in it (a stranger costs ~10 times a read).
 */
const BATCH = 4;
/** milliseconds of known sources' work per turn before the socket is read again */
const KNOWN_BUDGET_MS = 1;
/**
 * libuv reads at most this many datagrams of a socket per turn of the loop
 * (unix/udp.c, without recvmmsg): a turn that read as many left more in the
 * kernel's buffer.
 */
const READS_PER_TURN = 32;
/** period of the clock that notices the loop stalling (a long collection, a long task) */
const TICK_MS = 10;

/** A bounded FIFO ring of items with the time each was queued. */
class Ring<T> {
  private readonly items: Array<T | undefined>;
  private readonly at: Float64Array;
  private head = 0;
  size = 0;

  constructor(private readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
    this.at = new Float64Array(capacity);
  }

  push(item: T, now: number): boolean {
    if (this.size === this.capacity) return false;
    const i = (this.head + this.size) % this.capacity;
    this.items[i] = item;
    this.at[i] = now;
    this.size++;
    return true;
  }

  /** The oldest item and when it was queued; call only when size > 0. */
  shift(): [T, number] {
    const item = this.items[this.head]!;
    const at = this.at[this.head]!;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return [item, at];
  }

  clear(): void {
    this.items.fill(undefined);
    this.size = 0;
  }
}

export class UdpIntake<T> {
  private readonly known = new Ring<T>(KNOWN);
  private readonly strangers = new Ring<T>(STRANGERS);
  private scheduled = false;
  /** datagrams read from the socket since the last turn's drain */
  private reads = 0;
  /**
   * Since when every turn has read as many datagrams as libuv reads per turn:
   * the kernel's buffer has held a backlog since then (a queue whose age the
   * node cannot see directly), so what is read now waited about that long.
   */
  private backlogSince: number | undefined;
  /**
   * A clock of TICK_MS, and the loop's idle time at its last tick: the loop's
   * busy time since then is how long datagrams read now may have waited in
   * the kernel while the loop was stalled (a long collection, a long task).
   * Idle time (the loop waiting for I/O) does not count: then a datagram is
   * read as it comes.
   */
  private readonly ticker: NodeJS.Timeout;
  private tickAt = performance.now();
  private idleAtTick = eventLoopUtilization().idle;
  /** the loop's busy time beyond TICK_MS before the last tick: a stall that may just have ended */
  private stallAtTick = 0;
  /** the arrival time estimated for the datagrams read in this turn */
  private turnArrival = 0;
  readonly stats = { strangers: 0, dropped: 0, knownDropped: 0 };

  /** handle(item, waitedMs): waitedMs is how long the item waited (kernel and this queue), as far as the node can tell */
  constructor(private readonly handle: (item: T, waitedMs: number) => void) {
    this.ticker = setInterval(() => {
      const now = performance.now();
      const idle = eventLoopUtilization().idle;
      this.stallAtTick = Math.max(0, now - this.tickAt - (idle - this.idleAtTick) - TICK_MS);
      this.tickAt = now;
      this.idleAtTick = idle;
    }, TICK_MS);
    this.ticker.unref();
  }

  /** One datagram read from the socket (every one, queued or not): how the kernel's backlog is seen. */
  noteRead(): void {
    if (this.reads++ === 0) {
      const now = performance.now();
      // A stall under way since the last tick, or one the last tick (in this turn) saw end.
      const sinceTick = now - this.tickAt - (eventLoopUtilization().idle - this.idleAtTick) - TICK_MS;
      const stall = Math.max(sinceTick, now - this.tickAt < TICK_MS ? this.stallAtTick : 0, 0);
      // They came some time during the stall: half of it, a guess neither the best nor the worst case.
      this.turnArrival = now - stall / 2;
    }
    this.schedule();
  }

  /**
   * When a datagram read now reached the host, as far as the node can tell:
   * its read time, less the age of a backlog that lasted several turns, or
   * half a stall that just ended.
   */
  private arrival(): number {
    return Math.min(this.turnArrival || performance.now(), this.backlogSince ?? Infinity);
  }

  /** A known source's datagram: handled before any stranger's. */
  fromKnown(item: T): void {
    if (!this.known.push(item, this.arrival())) this.stats.knownDropped++;
    else this.schedule();
  }

  /** A stranger's datagram: queued, or dropped when the queue is full. */
  stranger(item: T): void {
    this.stats.strangers++;
    if (!this.strangers.push(item, this.arrival())) this.stats.dropped++;
    else this.schedule();
  }

  /** datagrams waiting to be handled */
  get waiting(): number {
    return this.known.size + this.strangers.size;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const start = performance.now();
    if (this.reads < READS_PER_TURN) this.backlogSince = undefined;
    else this.backlogSince ??= start;
    this.reads = 0;
    let now = start;
    while (this.known.size > 0 && now - start < KNOWN_BUDGET_MS) {
      const [item, at] = this.known.shift();
      this.handle(item, now - at);
      now = performance.now();
    }
    for (let i = 0; i < BATCH && this.strangers.size > 0; i++) {
      const [item, at] = this.strangers.shift();
      this.handle(item, performance.now() - at);
    }
    if (this.waiting > 0) this.schedule();
  }

  /** Drops what waits and stops the clock (the transport closes). */
  close(): void {
    clearInterval(this.ticker);
    this.known.clear();
    this.strangers.clear();
  }
}
