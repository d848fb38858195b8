// Node liveness from heartbeats, with suspicion before conviction.
//
// Every node publishes a heartbeat per heartbeat_ms. A peer not heard from for
// node_down_after_ms is *unreachable*: its devices leave the walks (new calls
// use what can be reached) but nothing it holds or is owed is touched, because
// silence is not death: the bus may be down, or this node may be the one cut
// off. An unreachable peer is probed (a request to its ping subject):
//  - it answers: it is alive (our heartbeats were lost or late), reachable again;
//  - the bus answers "no responders" while this node's own link to the bus has
//    been up for a while, and again a moment later: the bus itself says the
//    peer's connection is gone (a killed process closes its socket at once),
//    and it did not come straight back (a node whose connection the server
//    dropped, slow or stalled, reconnects within the moment): it is *down*;
//  - no answer: still unreachable.
// A peer is also down when it says goodbye, comes back with a new boot id, or
// stays silent past node_dead_after_ms while this node hears other peers (a
// node that hears no one, or whose bus link is down, is the one cut off and
// convicts nobody). Leases and allocations follow only `node_down`.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { NoRespondersError, claimedBy, type Bus, type BusMessage, type Subscription } from './bus.ts';
import { Heartbeat, PingReply, encode, parseMessage } from './messages.ts';
import { isLaterBoot } from './pid.ts';
import type { Subjects } from './subjects.ts';

export type PeerStatus = 'up' | 'unreachable' | 'down';

/** "no responders" convicts only when it persists this long (at most half of node_down_after_ms): a reconnect takes less */
const GONE_CONFIRM_MS = 750;
export type DownReason = 'timeout' | 'left' | 'restarted' | 'gone';

export interface NodeState {
  node: string;
  boot: string;
  /** up: heard within node_down_after_ms; unreachable: silent, not proven gone; down: proven gone */
  status: PeerStatus;
  /** status === 'up' */
  up: boolean;
  lastSeen: number;
  admin: string | undefined;
  sip: string | undefined;
  /** said goodbye (graceful stop) */
  left?: boolean;
}

export interface LivenessEvents {
  node_up: [state: NodeState];
  /** silent past node_down_after_ms: its devices are skipped, what it holds is kept */
  node_unreachable: [state: NodeState];
  /** heard again (same boot) after being unreachable: time to reconcile with it */
  node_reachable: [state: NodeState];
  node_down: [state: NodeState, reason: DownReason];
  /** this node's own timers ran this late: the others may have declared it down meanwhile */
  stalled: [lateMs: number];
  /** this node hears no peer (or its bus link is down): it keeps everything and convicts no one */
  isolated: [isolated: boolean];
}

export interface LivenessOptions {
  node: string;
  boot: string;
  heartbeatMs: number;
  downAfterMs: number;
  /** silence after which an unreachable peer is convicted without proof (only while this node hears others) */
  deadAfterMs?: number | undefined;
  /** how long a probe waits for its answer */
  probeTimeoutMs?: number | undefined;
  admin?: string;
  sip?: string;
}

export class Liveness extends EventEmitter<LivenessEvents> {
  private readonly nodes = new Map<string, NodeState>();
  private readonly subs: Subscription[] = [];
  private readonly probing = new Set<string>();
  private beatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private cutOff = false;
  private readonly deadAfterMs: number;
  private readonly probeTimeoutMs: number;
  private readonly sweepMs: number;
  /** how long "no responders" must persist before it convicts (longer than a reconnect takes) */
  private readonly goneConfirmMs: number;
  /** when each unreachable peer was first reported without responders (cleared by any other answer) */
  private readonly noResponders = new Map<string, number>();

  constructor(
    private readonly bus: Bus,
    private readonly subjects: Subjects,
    private readonly opts: LivenessOptions,
    private readonly log: Logger,
  ) {
    super();
    this.deadAfterMs = Math.max(opts.deadAfterMs ?? 30_000, opts.downAfterMs);
    this.probeTimeoutMs = opts.probeTimeoutMs ?? Math.max(200, opts.heartbeatMs);
    this.sweepMs = Math.max(50, Math.floor(opts.heartbeatMs / 2));
    this.goneConfirmMs = Math.min(GONE_CONFIRM_MS, Math.floor(opts.downAfterMs / 2));
  }

  start(): void {
    this.subs.push(this.bus.subscribe(this.subjects.heartbeat, (m) => this.onHeartbeat(m)));
    this.subs.push(this.bus.serve(this.subjects.ping(this.opts.node), () => encode({ node: this.opts.node, boot: this.opts.boot } satisfies PingReply)));
    this.beat();
    this.beatTimer = setInterval(() => this.beat(), this.opts.heartbeatMs);
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepMs);
    this.beatTimer.unref();
    this.sweepTimer.unref();
  }

  /** graceful: tells the others to mark this node down now rather than after the timeout */
  stop(graceful: boolean): void {
    if (graceful) this.beat(true);
    clearInterval(this.beatTimer);
    clearInterval(this.sweepTimer);
    for (const s of this.subs.splice(0)) s.unsubscribe();
  }

  /** Heard from within node_down_after_ms (this node always is). */
  isUp(node: string): boolean {
    if (node === this.opts.node) return true;
    return this.nodes.get(node)?.status === 'up';
  }

  statusOf(node: string): PeerStatus | 'unknown' {
    if (node === this.opts.node) return 'up';
    return this.nodes.get(node)?.status ?? 'unknown';
  }

  /** The boot id of an up node (undefined when unreachable, down or never seen). */
  bootOf(node: string): string | undefined {
    if (node === this.opts.node) return this.opts.boot;
    const s = this.nodes.get(node);
    return s?.status === 'up' ? s.boot : undefined;
  }

  /** The boot id of a node not proven gone (up or unreachable): what it holds is still its own. */
  liveBootOf(node: string): string | undefined {
    if (node === this.opts.node) return this.opts.boot;
    const s = this.nodes.get(node);
    return s && s.status !== 'down' ? s.boot : undefined;
  }

  /** This node hears no peer, or its bus link is down: it is the one cut off. */
  get isolated(): boolean {
    return this.cutOff;
  }

  /**
   * Contact from a node other than a heartbeat (e.g. an allocation request).
   * A node not known yet (or a restart whose first heartbeat is still on its
   * way) counts as up from now on, and goes down if no heartbeat follows.
   * Returns false when that incarnation is known to be gone: replaced by a
   * later boot, or it said goodbye.
   */
  heardFrom(node: string, boot: string): boolean {
    const prev = this.nodes.get(node);
    if (prev?.boot === boot && prev.left) return false;
    if (prev && prev.boot !== boot && isLaterBoot(prev.boot, boot)) return false;
    if (prev?.boot === boot && prev.status !== 'down') {
      this.alive(prev, Date.now());
      return true;
    }
    if (prev && prev.status !== 'down') this.markDown(prev, 'restarted');
    const state: NodeState = { node, boot, status: 'up', up: true, lastSeen: Date.now(), admin: prev?.admin, sip: prev?.sip };
    this.nodes.set(node, state);
    this.log.info({ peer: node, boot, via: 'request' }, 'node up');
    this.emit('node_up', state);
    return true;
  }

  states(): NodeState[] {
    return [...this.nodes.values()];
  }

  private beat(leaving = false): void {
    const hb: Heartbeat = { node: this.opts.node, boot: this.opts.boot, ts: Date.now() };
    if (this.opts.admin) hb.admin = this.opts.admin;
    if (this.opts.sip) hb.sip = this.opts.sip;
    if (leaving) hb.leaving = true;
    this.bus.publish(this.subjects.heartbeat, encode(hb));
  }

  private onHeartbeat(m: BusMessage): void {
    const p = parseMessage(Heartbeat, m.data);
    if (!p.ok) {
      this.log.warn({ error: p.error }, 'dropped malformed heartbeat');
      return;
    }
    const hb = p.value;
    // Only a node itself may say it is alive, or leaving.
    if (!claimedBy(m, hb.node, hb.boot)) return;
    if (hb.node === this.opts.node) return;
    const now = Date.now();
    const prev = this.nodes.get(hb.node);
    if (hb.leaving) {
      if (prev && prev.boot === hb.boot) {
        prev.left = true;
        if (prev.status !== 'down') this.markDown(prev, 'left');
      }
      return;
    }
    // A heartbeat from an earlier start, still in flight after a later one was heard.
    if (prev && prev.boot !== hb.boot && isLaterBoot(prev.boot, hb.boot)) return;
    // A heartbeat still in flight from a node that said goodbye must not revive it.
    if (prev && prev.left && prev.boot === hb.boot) return;
    if (prev && prev.boot === hb.boot && prev.status !== 'down') {
      prev.admin = hb.admin;
      prev.sip = hb.sip;
      this.alive(prev, now);
      return;
    }
    if (prev && prev.status !== 'down') this.markDown(prev, 'restarted');
    const state: NodeState = { node: hb.node, boot: hb.boot, status: 'up', up: true, lastSeen: now, admin: hb.admin, sip: hb.sip };
    this.nodes.set(hb.node, state);
    this.log.info({ peer: hb.node, boot: hb.boot }, 'node up');
    this.judgeIsolation(now);
    this.emit('node_up', state);
  }

  /** Heard from a peer's current incarnation. */
  private alive(s: NodeState, now: number): void {
    s.lastSeen = now;
    if (s.status !== 'unreachable') return;
    s.status = 'up';
    s.up = true;
    this.log.info({ peer: s.node, boot: s.boot }, 'node reachable again');
    this.judgeIsolation(now);
    this.emit('node_reachable', { ...s });
  }

  private lastSweep = Date.now();

  private sweep(): void {
    const now = Date.now();
    const late = now - this.lastSweep - this.sweepMs;
    this.lastSweep = now;
    if (late > this.opts.downAfterMs / 2) {
      this.log.warn({ late_ms: late }, 'this node stalled: its heartbeats were late; reconciling its allocations');
      this.emit('stalled', late);
      // Its peers' heartbeats are waiting in its own queue: judge them at the next sweep, not now.
      return;
    }
    // The time this sweep ran late is this node's, not its peers': it does not count against them.
    const own = Math.max(0, late);
    const silentFor = (s: NodeState) => now - s.lastSeen - own;
    for (const s of this.nodes.values()) {
      if (s.status === 'up' && silentFor(s) > this.opts.downAfterMs) {
        this.noResponders.delete(s.node);
        s.status = 'unreachable';
        s.up = false;
        this.log.warn({ peer: s.node, boot: s.boot, silent_ms: silentFor(s) }, 'node unreachable (suspected, not yet declared down)');
        this.emit('node_unreachable', { ...s });
      }
    }
    this.judgeIsolation(now);
    for (const s of this.nodes.values()) {
      if (s.status !== 'unreachable') continue;
      if (!this.cutOff && silentFor(s) > this.deadAfterMs) {
        this.markDown(s, 'timeout');
        continue;
      }
      void this.probe(s);
    }
  }

  private judgeIsolation(now: number): void {
    const link = this.bus.link();
    const peers = [...this.nodes.values()].filter((s) => s.status !== 'down');
    const cutOff = !link.connected || (peers.length > 0 && peers.every((s) => s.status === 'unreachable'));
    if (cutOff === this.cutOff) return;
    this.cutOff = cutOff;
    if (cutOff) {
      const why = link.connected ? `no peer heard for ${this.opts.downAfterMs} ms` : `bus link down for ${now - link.since} ms`;
      this.log.warn({ why }, 'this node is cut off from the cluster: keeping its calls, devices and allocations');
    } else {
      this.log.info('this node hears the cluster again');
    }
    this.emit('isolated', cutOff);
  }

  /** Asks an unreachable peer directly; the bus's "no responders" is proof that its connection is gone. */
  private async probe(s: NodeState): Promise<void> {
    if (this.probing.has(s.node)) return;
    this.probing.add(s.node);
    const sentAt = Date.now();
    try {
      const p = parseMessage(PingReply, await this.bus.request(this.subjects.ping(s.node), encode({}), this.probeTimeoutMs));
      this.noResponders.delete(s.node);
      const cur = this.nodes.get(s.node);
      if (!p.ok || cur !== s || s.status !== 'unreachable') return;
      if (p.value.boot === s.boot) this.alive(s, Date.now());
      else if (isLaterBoot(s.boot, p.value.boot)) this.heardFrom(s.node, p.value.boot);
    } catch (err) {
      if (!(err instanceof NoRespondersError)) return void this.noResponders.delete(s.node);
      if (this.nodes.get(s.node) !== s || s.status !== 'unreachable') return;
      // The peer had as long as this node to (re)connect: a link that came up only just now proves nothing.
      const link = this.bus.link();
      if (!link.connected || sentAt - link.since < this.opts.downAfterMs) return;
      const first = this.noResponders.get(s.node);
      if (first === undefined) return void this.noResponders.set(s.node, sentAt);
      if (sentAt - first >= this.goneConfirmMs) {
        this.noResponders.delete(s.node);
        this.markDown(s, 'gone');
      }
    } finally {
      this.probing.delete(s.node);
    }
  }

  private markDown(s: NodeState, reason: DownReason): void {
    s.status = 'down';
    s.up = false;
    this.log.warn({ peer: s.node, boot: s.boot, reason }, 'node down');
    this.emit('node_down', { ...s }, reason);
  }
}
