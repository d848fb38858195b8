// Agreement after a silence. While a peer was unreachable (a bus outage, a
// partition, a stall) this node kept everything it held and was owed, and
// messages between the two were lost. When they hear each other again (and
// every RECONCILE_MS anyway) each side checks, for what lies between them:
//  - allocations this node holds on the peer's devices: still held there? (MRM reconcile)
//  - leases this node's devices granted to the peer: does it still hold them? Freed if not.
//  - calls with the peer: is the far half still there? (call audit)
// so no device ends above its capacity or with a leaked lease, and no call is left half up.
import type { Logger } from 'pino';
import type { Bus } from '../cluster/bus.ts';
import { HoldsReply, encode, parseMessage, type DeviceStatus } from '../cluster/messages.ts';
import type { Subjects } from '../cluster/subjects.ts';
import type { CallControl } from '../calls/callControl.ts';
import type { MediaResourceProcess } from '../devices/mediaResourceProcess.ts';
import type { MediaResourceManager } from '../mrm/mediaResourceManager.ts';
import { errorMessage } from '../errors.ts';

/** how long one pass over this node's leases serves further reconciliations (a pass may be this stale, the grace is longer) */
const SCAN_REUSE_MS = 1000;

export interface ReconcilerDeps {
  node: string;
  bus: Bus;
  subjects: Subjects;
  mrm: MediaResourceManager;
  resources(): readonly MediaResourceProcess[];
  calls(): CallControl | undefined;
  requestTimeoutMs: number;
  log: Logger;
}

export interface ReconcileResult {
  /** allocations this node held that the peer's devices no longer hold (re-homed) */
  allocationsLost: number;
  /** leases of this node's devices the peer no longer held (freed) */
  leasesFreed: number;
  /** call halves whose far half was gone (ended) */
  callsEnded: number;
}

export class Reconciler {
  /** leases younger than this are left alone: the allocation's answer may still be on its way */
  private readonly graceMs: number;
  private readonly running = new Map<string, Promise<ReconcileResult>>();
  private scan: { at: number; leases: Promise<Map<string, Map<string, MediaResourceProcess>>> } | undefined;

  constructor(private readonly d: ReconcilerDeps) {
    this.graceMs = Math.max(2000, 4 * d.requestTimeoutMs);
  }

  /** One reconciliation with `peer` at a time; a second ask while one runs gets the running one. */
  with(peer: string, reason: string): Promise<ReconcileResult> {
    const running = this.running.get(peer);
    if (running) return running;
    const p = this.run(peer, reason).finally(() => this.running.delete(peer));
    this.running.set(peer, p);
    return p;
  }

  /** The answer to a peer's lease audit: which of these allocations this node holds. */
  holds(ids: readonly string[]): HoldsReply {
    return { held: ids.filter((id) => this.d.mrm.get(id) !== undefined) };
  }

  private async run(peer: string, reason: string): Promise<ReconcileResult> {
    const [allocationsLost, leasesFreed, callsEnded] = await Promise.all([
      this.d.mrm.reconcile(reason, peer).catch(() => 0),
      this.auditLeases(peer, reason),
      this.d
        .calls()
        ?.auditWith(peer, reason)
        .catch((err: unknown) => {
          this.d.log.warn({ peer, err: errorMessage(err) }, 'call audit failed');
          return 0;
        }) ?? 0,
    ]);
    const result = { allocationsLost, leasesFreed, callsEnded };
    if (allocationsLost + leasesFreed + callsEnded > 0)
      this.d.log.warn({ peer, reason, ...result }, 'reconciled with peer');
    else this.d.log.debug({ peer, reason }, 'reconciled with peer: nothing to mend');
    return result;
  }

  /**
   * This node's leases by requester, past their grace. One pass over the
   * devices serves every peer reconciled within SCAN_REUSE_MS (the periodic
   * check asks for all peers at once: a pass per peer made it peers x devices).
   */
  private leasesByRequester(): Promise<Map<string, Map<string, MediaResourceProcess>>> {
    const now = Date.now();
    if (this.scan && now - this.scan.at < SCAN_REUSE_MS) return this.scan.leases;
    const leases = (async () => {
      const by = new Map<string, Map<string, MediaResourceProcess>>();
      for (const proc of this.d.resources()) {
        const s = (await proc.deliver({ op: 'status' })) as DeviceStatus;
        for (const a of s.allocations) {
          if (now - a.since <= this.graceMs) continue;
          let mine = by.get(a.requester);
          if (!mine) by.set(a.requester, (mine = new Map()));
          mine.set(a.id, proc);
        }
      }
      return by;
    })();
    this.scan = { at: now, leases };
    return leases;
  }

  private async auditLeases(peer: string, reason: string): Promise<number> {
    const leases = (await this.leasesByRequester()).get(peer);
    if (!leases?.size) return 0;
    let held: Set<string>;
    try {
      const raw = await this.d.bus.request(
        this.d.subjects.nodeControl(peer),
        encode({ op: 'holds', allocations: [...leases.keys()] }),
        this.d.requestTimeoutMs * 4,
      );
      const p = parseMessage(HoldsReply, raw);
      if (!p.ok) throw new Error(p.error);
      held = new Set(p.value.held);
    } catch (err) {
      this.d.log.debug({ peer, err: errorMessage(err) }, 'lease audit: no answer (asked again later)');
      return 0;
    }
    let freed = 0;
    for (const [id, proc] of leases) {
      if (held.has(id)) continue;
      const r = (await proc.deliver({ op: 'release', allocation_id: id })) as { released?: boolean };
      if (!r.released) continue;
      freed++;
      this.d.log.warn(
        { allocation: id, device: proc.name, holder: peer, reason },
        'lease freed: its holder no longer holds it',
      );
    }
    return freed;
  }
}
