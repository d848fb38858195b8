// What a UDP flood must not take: the known sources' turn. Datagrams from a
// known source (a registered phone's binding) are handled the moment they
// are read; strangers' wait in a bounded queue served in small batches
// between reads (setImmediate runs after the poll phase, so every batch
// lets the socket be drained first). When strangers send faster than the
// node can answer, the excess is dropped here, cheaply, instead of in the
// kernel's socket buffer where it would take the phones' datagrams with it.
/** strangers' datagrams waiting; beyond this they are dropped (counted) */
const QUEUE = 4096;
/**
 * Strangers handled per turn of the event loop before the socket is read
 * again. libuv reads at most 32 datagrams of a socket per turn: handling
 * fewer strangers than that per turn keeps reading ahead of a flood (the
 * queue fills and the excess is dropped here), so the kernel's buffer never
 * overflows with a phone's datagram in it (a stranger costs ~10 times a read).
 */
const BATCH = 4;

export class UdpIntake<T> {
  private readonly ring: Array<T | undefined> = new Array<T | undefined>(QUEUE);
  private head = 0;
  private size = 0;
  private scheduled = false;
  readonly stats = { strangers: 0, dropped: 0 };

  constructor(private readonly handle: (item: T) => void) {}

  /** A stranger's datagram: queued, or dropped when the queue is full. */
  stranger(item: T): void {
    this.stats.strangers++;
    if (this.size === QUEUE) {
      this.stats.dropped++;
      return;
    }
    this.ring[(this.head + this.size) % QUEUE] = item;
    this.size++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  get waiting(): number {
    return this.size;
  }

  private drain(): void {
    this.scheduled = false;
    for (let i = 0; i < BATCH && this.size > 0; i++) {
      const item = this.ring[this.head]!;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % QUEUE;
      this.size--;
      this.handle(item);
    }
    if (this.size > 0) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  clear(): void {
    this.ring.fill(undefined);
    this.size = 0;
  }
}
