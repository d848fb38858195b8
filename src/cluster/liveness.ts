// Node liveness by probing, in the spirit of SWIM, with suspicion before
// conviction.
//
// Every heartbeat_ms a node probes one peer (a request to its ping subject
// that names the prober), taking the cluster's nodes in a shuffled round
// robin: each peer is probed by someone about once a period, and a node's
// work stays the same whatever the size of the cluster (when every node
// published a heartbeat to every node, the cluster's work grew with the
// square of its size and saturated 100 nodes). A probe is contact both ways:
// the prober hears the answer, the probed node hears the prober.
//  - answered: alive;
//  - no answer in time: *suspected*. The prober announces it (each receiver
//    probes the suspect for itself: one node's word convicts no one; the
//    suspect, if it hears, announces itself) and probes it every sweep. A
//    suspect not heard from for node_down_after_ms is *unreachable*: its
//    devices leave the walks (new calls use what can be reached) but nothing
//    it holds or is owed is touched, because silence is not death: the bus
//    may be down, or this node may be the one cut off;
//  - the bus answers "no responders" while this node's own link has been up
//    for a while, and again node_down_after_ms later: the bus itself says the
//    peer's connection is gone (a killed process closes its socket at once)
//    and it did not come straight back (a reconnect takes less): *down*.
// A peer is also down when it says goodbye, comes back with a new boot id, or
// stays unreachable past node_dead_after_ms while this node hears other peers.
// A node whose bus link is down, that hears no peer for node_down_after_ms,
// or finds every peer unreachable is the one cut off: it marks its peers
// unreachable and convicts nobody. Leases and allocations follow only
// `node_down`.
//
// Announcements (the `heartbeat` subject) go out only at start, when
// suspected, when suspecting and at stop. A node hearing a newcomer probes it,
// so the newcomer learns the cluster from being probed; a node also probes
// every configured member at start, for the announcements it missed.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { BusTimeoutError, NoRespondersError, claimedBy, type Bus, type BusMessage, type Subscription } from './bus.ts';
import { forEachLimited } from './limited.ts';
import { Heartbeat, PingReply, PingRequest, encode, parseMessage } from './messages.ts';
import { isLaterBoot } from './pid.ts';
import type { Subjects } from './subjects.ts';

export type PeerStatus = 'up' | 'unreachable' | 'down';

/** suspects named in one announcement at most (announcements go out once a period, with the suspects found since) */
const MAX_SUSPECTS_ANNOUNCED = 32;
/** probes of the configured members in flight at start */
const START_PROBES = 16;
export type DownReason = 'timeout' | 'left' | 'restarted' | 'gone';

export interface NodeState {
  node: string;
  boot: string;
  /** up: not suspected, or suspected for less than node_down_after_ms; unreachable: silent, not proven gone; down: proven gone */
  status: PeerStatus;
  /** status === 'up' */
  up: boolean;
  /** last contact with this incarnation (a probe's answer, its probe, its announcement) */
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
  /** the probe period */
  heartbeatMs: number;
  downAfterMs: number;
  /** silence after which an unreachable peer is convicted without proof (only while this node hears others) */
  deadAfterMs?: number | undefined;
  /** how long a probe waits for its answer */
  probeTimeoutMs?: number | undefined;
  /** the cluster's nodes as configured (probed even before they are heard of); without it, the nodes heard of */
  members?: (() => Iterable<string>) | undefined;
  admin?: string;
  sip?: string;
}

export class Liveness extends EventEmitter<LivenessEvents> {
  private readonly nodes = new Map<string, NodeState>();
  private readonly subs: Subscription[] = [];
  private readonly probing = new Set<string>();
  private probeTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private cutOff = false;
  private readonly deadAfterMs: number;
  private readonly probeTimeoutMs: number;
  private readonly sweepMs: number;
  /** how long "no responders" must persist before it convicts: node_down_after_ms (a reconnect, even of a busy node, takes less) */
  private readonly goneConfirmMs: number;
  /** suspects found since the last announcement, named in the next one */
  private readonly toAnnounce = new Map<string, string>();
  /** when each suspect's silence began (the failed probe's sending), until it is heard */
  private readonly suspectSince = new Map<string, number>();
  /** suspects another node announced: this node checks them but does not announce them again */
  private readonly told = new Set<string>();
  /** when each peer was first reported without responders (cleared by any other answer) */
  private readonly noResponders = new Map<string, number>();
  /** the round robin of probes still to make this round */
  private round: string[] = [];
  /** the last contact with any peer (or answer from the bus itself: "no responders") */
  private lastContact = Date.now();
  private lastAnnounced = 0;
  private lastSweep = Date.now();

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
    this.goneConfirmMs = opts.downAfterMs;
  }

  start(): void {
    this.subs.push(this.bus.subscribe(this.subjects.heartbeat, (m) => this.onAnnouncement(m)));
    this.subs.push(this.bus.serve(this.subjects.ping(this.opts.node), (m) => this.onProbe(m)));
    const now = Date.now();
    this.lastContact = now;
    this.lastSweep = now;
    this.announce();
    const members = [...(this.opts.members?.() ?? [])].filter((n) => n !== this.opts.node);
    void forEachLimited(members, START_PROBES, (n) => this.probe(n));
    this.probeTimer = setInterval(() => {
      this.announceSuspects();
      this.probeNext();
    }, this.opts.heartbeatMs);
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepMs);
    this.probeTimer.unref();
    this.sweepTimer.unref();
  }

  /** graceful: tells the others to mark this node down now rather than after the timeout */
  stop(graceful: boolean): void {
    if (graceful) this.announce({ leaving: true });
    clearInterval(this.probeTimer);
    clearInterval(this.sweepTimer);
    for (const s of this.subs.splice(0)) s.unsubscribe();
  }

  /** Not suspected for node_down_after_ms, nor proven gone (this node always is up). */
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
   * Contact from a node (a probe, its answer, an allocation request). A node
   * not known yet, or a later start of one, counts as up from now on and is
   * probed like any other. Returns false when that incarnation is known to be
   * gone: replaced by a later boot, or it said goodbye.
   */
  heardFrom(node: string, boot: string, via = 'request'): boolean {
    if (node === this.opts.node) return true;
    const prev = this.nodes.get(node);
    if (prev?.boot === boot && prev.left) return false;
    if (prev && prev.boot !== boot && isLaterBoot(prev.boot, boot)) return false;
    const now = Date.now();
    if (prev?.boot === boot && prev.status !== 'down') {
      this.alive(prev, now);
      return true;
    }
    this.arrived(node, boot, now, via, prev?.admin, prev?.sip);
    return true;
  }

  states(): NodeState[] {
    return [...this.nodes.values()];
  }

  /** The suspects found this period, in one announcement (one each would cost the cluster N deliveries apiece). */
  private announceSuspects(): void {
    if (this.toAnnounce.size === 0) return;
    const suspects = [...this.toAnnounce].slice(0, MAX_SUSPECTS_ANNOUNCED).map(([node, boot]) => ({ node, boot }));
    this.toAnnounce.clear();
    // A node cut off would only add to the traffic that comes back with it.
    if (!this.cutOff) this.announce({ suspects });
  }

  private announce(extra: Pick<Heartbeat, 'leaving' | 'suspects'> = {}): void {
    const hb: Heartbeat = { node: this.opts.node, boot: this.opts.boot, ts: Date.now(), ...extra };
    if (this.opts.admin) hb.admin = this.opts.admin;
    if (this.opts.sip) hb.sip = this.opts.sip;
    this.lastAnnounced = hb.ts;
    this.bus.publish(this.subjects.heartbeat, encode(hb));
  }

  /** A new incarnation of a node (first heard of, restarted, or back after being declared down). */
  private arrived(
    node: string,
    boot: string,
    now: number,
    via: string,
    admin: string | undefined,
    sip: string | undefined,
  ): void {
    const prev = this.nodes.get(node);
    if (prev && prev.status !== 'down') this.markDown(prev, 'restarted');
    this.forgetSuspicion(node);
    const state: NodeState = { node, boot, status: 'up', up: true, lastSeen: now, admin, sip };
    this.nodes.set(node, state);
    this.log.info({ peer: node, boot, via }, 'node up');
    this.contact(now);
    this.emit('node_up', state);
  }

  private onAnnouncement(m: BusMessage): void {
    const p = parseMessage(Heartbeat, m.data);
    if (!p.ok) {
      this.log.warn({ error: p.error }, 'dropped malformed announcement');
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
    // An announcement from an earlier start, still in flight after a later one was heard.
    if (prev && prev.boot !== hb.boot && isLaterBoot(prev.boot, hb.boot)) return;
    // An announcement still in flight from a node that said goodbye must not revive it.
    if (prev?.left && prev.boot === hb.boot) return;
    if (prev && prev.boot === hb.boot && prev.status !== 'down') {
      prev.admin = hb.admin;
      prev.sip = hb.sip;
      this.alive(prev, now);
    } else {
      this.arrived(hb.node, hb.boot, now, 'announcement', hb.admin, hb.sip);
      // Probed, the newcomer hears of this node (and learns its key) without waiting for its round.
      void this.probe(hb.node);
    }
    for (const s of hb.suspects ?? []) this.onSuspicion(s);
  }

  /** A peer announced that it found `suspect` silent. */
  private onSuspicion(suspect: { node: string; boot: string }): void {
    if (suspect.node === this.opts.node) {
      // The others are about to stop routing to this node: say it is here (once a period at most).
      if (suspect.boot === this.opts.boot && Date.now() - this.lastAnnounced >= this.opts.heartbeatMs) this.announce();
      return;
    }
    const s = this.nodes.get(suspect.node);
    if (!s || s.boot !== suspect.boot || s.status !== 'up' || this.suspectSince.has(s.node)) return;
    this.told.add(s.node);
    void this.probe(s.node);
  }

  /** Answers a probe; being probed is also hearing from the prober. */
  private onProbe(m: BusMessage): Uint8Array {
    const p = parseMessage(PingRequest, m.data);
    if (p.ok && claimedBy(m, p.value.node, p.value.boot)) this.heardFrom(p.value.node, p.value.boot, 'probe');
    return encode({ node: this.opts.node, boot: this.opts.boot } satisfies PingReply);
  }

  /** Heard from a peer's current incarnation. */
  private alive(s: NodeState, now: number): void {
    s.lastSeen = now;
    this.forgetSuspicion(s.node);
    this.contact(now);
    if (s.status !== 'unreachable') return;
    s.status = 'up';
    s.up = true;
    this.log.info({ peer: s.node, boot: s.boot }, 'node reachable again');
    this.judgeIsolation(now);
    this.emit('node_reachable', { ...s });
  }

  private forgetSuspicion(node: string): void {
    this.suspectSince.delete(node);
    this.noResponders.delete(node);
    this.told.delete(node);
    this.toAnnounce.delete(node);
  }

  private contact(now: number): void {
    this.lastContact = now;
    if (this.cutOff) this.judgeIsolation(now);
  }

  /** The next peer of this round (a new shuffled round when one is done). */
  private probeNext(): void {
    if (this.round.length === 0) {
      const all = new Set<string>(this.nodes.keys());
      for (const n of this.opts.members?.() ?? []) all.add(n);
      all.delete(this.opts.node);
      this.round = shuffle([...all]);
    }
    const next = this.round.pop();
    if (next !== undefined) void this.probe(next);
  }

  private async probe(node: string): Promise<void> {
    if (this.probing.has(node)) return;
    this.probing.add(node);
    const sentAt = Date.now();
    try {
      const ask = encode({ node: this.opts.node, boot: this.opts.boot } satisfies PingRequest);
      const p = parseMessage(PingReply, await this.bus.request(this.subjects.ping(node), ask, this.probeTimeoutMs));
      if (!p.ok || p.value.node !== node) {
        this.log.warn(
          { peer: node, error: p.ok ? `answered as ${p.value.node}` : p.error },
          'dropped malformed probe answer',
        );
        return;
      }
      this.heardFrom(node, p.value.boot, 'probe answer');
    } catch (err) {
      this.probeFailed(node, sentAt, err);
    } finally {
      this.probing.delete(node);
    }
  }

  private probeFailed(node: string, sentAt: number, err: unknown): void {
    const s = this.nodes.get(node);
    // Never heard of, or already proven gone: there is nothing to suspect.
    if (!s || s.status === 'down') return;
    const now = Date.now();
    if (err instanceof NoRespondersError) {
      // The bus answered: this node is not the one cut off, whatever the peer is.
      this.lastContact = Math.max(this.lastContact, now);
      // The peer had as long as this node to (re)connect: a link that came up only just now proves nothing.
      const link = this.bus.link();
      if (link.connected && sentAt - link.since >= this.opts.downAfterMs) {
        const first = this.noResponders.get(node);
        if (first === undefined) this.noResponders.set(node, sentAt);
        else if (sentAt - first >= this.goneConfirmMs) {
          this.markDown(s, 'gone');
          return;
        }
      }
    } else {
      this.noResponders.delete(node);
      if (!(err instanceof BusTimeoutError)) return;
      // A deadline that passed well before this node looked is its own stall (the answer may be queued behind it).
      if (now - sentAt > this.probeTimeoutMs + Math.max(100, this.probeTimeoutMs / 2)) return;
    }
    if (this.suspectSince.has(node)) return;
    this.suspectSince.set(node, sentAt);
    this.log.info(
      { peer: node, boot: s.boot, why: err instanceof Error ? err.message : String(err) },
      'node suspected: probing it',
    );
    // Told by another node: it already asked everyone to look.
    if (!this.told.has(node)) this.toAnnounce.set(node, s.boot);
  }

  private sweep(): void {
    const now = Date.now();
    const late = now - this.lastSweep - this.sweepMs;
    this.lastSweep = now;
    if (late > this.opts.downAfterMs / 2) {
      this.log.warn({ late_ms: late }, 'this node stalled: its probes were late; reconciling its allocations');
      // The time this node stood still is not its peers' silence.
      for (const [n, since] of this.suspectSince) this.suspectSince.set(n, since + late);
      this.lastContact = Math.max(this.lastContact, now);
      this.emit('stalled', late);
      return;
    }
    // The time this sweep ran late is this node's, not its peers': it does not count against them.
    const own = Math.max(0, late);
    for (const s of this.nodes.values()) {
      const since = this.suspectSince.get(s.node);
      if (s.status !== 'up' || since === undefined || now - since - own <= this.opts.downAfterMs) continue;
      // Every probe since the first said "no responders": proven gone, not merely silent.
      const gone = this.noResponders.get(s.node);
      if (gone !== undefined && now - gone - own >= this.goneConfirmMs) this.markDown(s, 'gone');
      else this.unreachable(s, now - since);
    }
    this.judgeIsolation(now, own);
    for (const s of this.nodes.values()) {
      if (s.status === 'down') continue;
      const since = this.suspectSince.get(s.node);
      if (since === undefined) continue;
      if (s.status === 'unreachable' && !this.cutOff && now - since - own > this.deadAfterMs) {
        this.markDown(s, 'timeout');
        continue;
      }
      void this.probe(s.node);
    }
  }

  private unreachable(s: NodeState, silentMs: number): void {
    s.status = 'unreachable';
    s.up = false;
    this.log.warn(
      { peer: s.node, boot: s.boot, silent_ms: silentMs },
      'node unreachable (suspected, not yet declared down)',
    );
    this.emit('node_unreachable', { ...s });
  }

  private judgeIsolation(now: number, own = 0): void {
    const link = this.bus.link();
    const peers = [...this.nodes.values()].filter((s) => s.status !== 'down');
    const deaf = peers.length > 0 && now - this.lastContact - own > this.opts.downAfterMs;
    const cutOff = !link.connected || deaf || (peers.length > 0 && peers.every((s) => s.status === 'unreachable'));
    if (cutOff !== this.cutOff) {
      this.cutOff = cutOff;
      if (cutOff) {
        const why = !link.connected
          ? `bus link down for ${now - link.since} ms`
          : `no peer heard for ${now - this.lastContact} ms`;
        this.log.warn({ why }, 'this node is cut off from the cluster: keeping its calls, devices and allocations');
      } else {
        this.log.info('this node hears the cluster again');
      }
      this.emit('isolated', cutOff);
    }
    // Hearing no one, this node cannot reach anyone either: every peer's devices leave the walks (isolated is set first).
    if (!deaf) return;
    for (const s of peers) {
      if (s.status !== 'up') continue;
      if (!this.suspectSince.has(s.node)) this.suspectSince.set(s.node, this.lastContact);
      this.unreachable(s, now - this.lastContact);
    }
  }

  private markDown(s: NodeState, reason: DownReason): void {
    s.status = 'down';
    s.up = false;
    this.forgetSuspicion(s.node);
    this.log.warn({ peer: s.node, boot: s.boot, reason }, 'node down');
    this.emit('node_down', { ...s }, reason);
  }
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
