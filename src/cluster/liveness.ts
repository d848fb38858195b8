// Node liveness from heartbeats. Every node publishes one per heartbeat_ms;
// a node not heard from for node_down_after_ms is down. A heartbeat with a new
// boot id means the node restarted: listeners see it go down (old boot) and
// come up (new boot), so leases held across the restart are dropped.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { claimedBy, type Bus, type BusMessage, type Subscription } from './bus.ts';
import { Heartbeat, encode, parseMessage } from './messages.ts';
import { isLaterBoot } from './pid.ts';
import type { Subjects } from './subjects.ts';

export interface NodeState {
  node: string;
  boot: string;
  up: boolean;
  lastSeen: number;
  admin: string | undefined;
  sip: string | undefined;
  /** said goodbye (graceful stop) */
  left?: boolean;
}

export interface LivenessEvents {
  node_up: [state: NodeState];
  node_down: [state: NodeState, reason: 'timeout' | 'left' | 'restarted'];
  /** this node's own timers ran this late: the others may have declared it down meanwhile */
  stalled: [lateMs: number];
}

export interface LivenessOptions {
  node: string;
  boot: string;
  heartbeatMs: number;
  downAfterMs: number;
  admin?: string;
  sip?: string;
}

export class Liveness extends EventEmitter<LivenessEvents> {
  private readonly nodes = new Map<string, NodeState>();
  private sub: Subscription | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly subjects: Subjects,
    private readonly opts: LivenessOptions,
    private readonly log: Logger,
  ) {
    super();
  }

  start(): void {
    this.sub = this.bus.subscribe(this.subjects.heartbeat, (m) => this.onHeartbeat(m));
    this.beat();
    this.beatTimer = setInterval(() => this.beat(), this.opts.heartbeatMs);
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(50, Math.floor(this.opts.heartbeatMs / 2)));
    this.beatTimer.unref();
    this.sweepTimer.unref();
  }

  /** graceful: tells the others to mark this node down now rather than after the timeout */
  stop(graceful: boolean): void {
    if (graceful) this.beat(true);
    clearInterval(this.beatTimer);
    clearInterval(this.sweepTimer);
    this.sub?.unsubscribe();
  }

  isUp(node: string): boolean {
    if (node === this.opts.node) return true;
    return this.nodes.get(node)?.up ?? false;
  }

  /** The boot id of an up node (undefined when down or never seen). */
  bootOf(node: string): string | undefined {
    if (node === this.opts.node) return this.opts.boot;
    const s = this.nodes.get(node);
    return s?.up ? s.boot : undefined;
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
    if (prev?.boot === boot && (prev.up || prev.left)) return !prev.left;
    if (prev && prev.boot !== boot && isLaterBoot(prev.boot, boot)) return false;
    if (prev?.up) this.markDown(prev, 'restarted');
    const state: NodeState = { node, boot, up: true, lastSeen: Date.now(), admin: prev?.admin, sip: prev?.sip };
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
        if (prev.up) this.markDown(prev, 'left');
      }
      return;
    }
    // A heartbeat from an earlier start, still in flight after a later one was heard.
    if (prev && prev.boot !== hb.boot && isLaterBoot(prev.boot, hb.boot)) return;
    if (prev && prev.up && prev.boot !== hb.boot) this.markDown(prev, 'restarted');
    // A heartbeat still in flight from a node that said goodbye must not revive it.
    if (prev && prev.left && prev.boot === hb.boot) return;
    const state: NodeState = { node: hb.node, boot: hb.boot, up: true, lastSeen: now, admin: hb.admin, sip: hb.sip };
    this.nodes.set(hb.node, state);
    if (!prev || !prev.up || prev.boot !== hb.boot) {
      this.log.info({ peer: hb.node, boot: hb.boot }, 'node up');
      this.emit('node_up', state);
    }
  }

  private lastSweep = Date.now();

  private sweep(): void {
    const now = Date.now();
    const late = now - this.lastSweep - Math.max(50, Math.floor(this.opts.heartbeatMs / 2));
    this.lastSweep = now;
    if (late > this.opts.downAfterMs / 2) {
      this.log.warn({ late_ms: late }, 'this node stalled: its heartbeats were late; reconciling its allocations');
      this.emit('stalled', late);
      // Its peers' heartbeats are waiting in its own queue: judge them at the next sweep, not now.
      return;
    }
    // The time this sweep ran late is this node's, not its peers': it does not count against them.
    const own = Math.max(0, late);
    for (const s of this.nodes.values()) {
      if (s.up && now - s.lastSeen - own > this.opts.downAfterMs) this.markDown(s, 'timeout');
    }
  }

  private markDown(s: NodeState, reason: 'timeout' | 'left' | 'restarted'): void {
    s.up = false;
    this.log.warn({ peer: s.node, boot: s.boot, reason }, 'node down');
    this.emit('node_down', { ...s }, reason);
  }
}
