// The media resource manager of one call manager: finds a media resource
// device for a phone this node controls by walking the phone's MRGL and asking
// device processes (anywhere in the cluster) for an allocation, and keeps the
// allocations this node holds until they are released or lost.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ClusterModel, PhoneSpec, ResolvedMrgl } from '../config/model.ts';
import type { MediaResourceType } from '../config/schema.ts';
import { BusTimeoutError, NoRespondersError } from '../cluster/bus.ts';
import type { DeviceManager } from '../cluster/deviceManager.ts';
import {
  AllocateReply,
  DeviceStatus,
  LinkReply,
  MediaReply,
  ReleaseReply,
  type AllocateRequest,
  type LegQuality,
  type MediaRequest,
  type Requirement,
} from '../cluster/messages.ts';
import type { Pid } from '../cluster/pid.ts';
import { RemoteProcessError, type PostOffice } from '../cluster/postOffice.ts';
import type { LoadView } from './loadView.ts';
import { Allocation, type AllocationHolder, type AllocationOwner } from './allocation.ts';
import type { Trace, TraceStep } from './trace.ts';
import { walk, type WalkContext } from './walk.ts';
import { errorMessage, TandemError } from '../errors.ts';

export interface AllocationRequest {
  phone: string;
  type: MediaResourceType;
  /** an MRGL handed over with the request (API field): checked, then above every other */
  mrgl?: string | undefined;
  /** the MRGL call control already resolved for the call (ClusterModel.resolveMrgl), with where it came from */
  resolvedMrgl?: ResolvedMrgl | undefined;
  requirement?: Requirement | undefined;
  /** try this device first (a conference already running on it), then the MRGL */
  preferred?: { device: string; group: string } | undefined;
  /** who holds the allocation: a call, or an admin API client (default: an unnamed API client) */
  holder?: AllocationHolder | undefined;
  /** released by itself after this long (API allocations; a call releases its own) */
  leaseMs?: number | undefined;
}

export { Allocation, AllocationGoneError, type AllocationHolder } from './allocation.ts';

export type AllocationErrorCode = 'unknown_phone' | 'not_local' | 'unknown_mrgl' | 'no_resource';

/** Times a media request is sent before its call goes on without media through the device. */
const MEDIA_ATTEMPTS = 3;

export class AllocationError extends TandemError {
  /** not_local: the node that controls the phone (where to ask instead) */
  readonly controller: string | undefined;
  constructor(
    readonly code: AllocationErrorCode,
    message: string,
    readonly trace?: Trace,
    options?: ErrorOptions & { controller?: string },
  ) {
    super(message, options);
    this.controller = options?.controller;
  }
}

export interface MrmEvents {
  /** an allocation this node held is gone (its device's node died or restarted) */
  allocation_lost: [allocation: Allocation, reason: string];
  allocated: [allocation: Allocation];
  released: [allocation: Allocation];
  failed: [trace: Trace];
}

export interface MrmOptions {
  node: string;
  boot: string;
  requestTimeoutMs: number;
}

export class MediaResourceManager extends EventEmitter<MrmEvents> {
  private readonly held = new Map<string, Allocation>();
  private readonly leases = new Map<string, NodeJS.Timeout>();
  /** what the handles this manager makes ask of it */
  private readonly owner: AllocationOwner = {
    releaseHeld: (a) => this.sendRelease(a),
    mediaOf: (a, req) => this.sendMedia(a, req),
    dtmfOf: async (a, leg, digit, durationMs) => {
      await this.post.call(
        a.pid,
        { op: 'dtmf', allocation_id: a.id, leg, digit, duration_ms: durationMs },
        this.opts.requestTimeoutMs,
      );
    },
    reportLost: (a, reason) => {
      this.forget(a.id);
      this.emit('allocation_lost', a, reason);
    },
  };

  constructor(
    private readonly model: ClusterModel,
    private readonly devices: DeviceManager,
    private readonly post: PostOffice,
    private readonly loads: LoadView,
    private readonly opts: MrmOptions,
    private readonly log: Logger,
  ) {
    super();
  }

  async allocate(req: AllocationRequest): Promise<Allocation> {
    const { phone, trace, ctx } = this.begin(req, false);
    await this.watchReach(ctx.mrgl);
    const id = randomUUID();
    for (const item of walk(ctx)) {
      if ('step' in item) {
        this.record(trace, item.step);
        continue;
      }
      const { group, device, entry } = item.candidate;
      const t0 = performance.now();
      const step: TraceStep = { group, device: device.name, verdict: 'unavailable', node: entry.node, pid: entry.pid };
      const msg: AllocateRequest = {
        op: 'allocate',
        allocation_id: id,
        requester: { node: this.opts.node, boot: this.opts.boot },
        phone: phone.number,
        type: req.type,
      };
      try {
        const reply = AllocateReply.parse(await this.post.call(entry.pid, msg, this.opts.requestTimeoutMs));
        this.loads.observe(device.name, reply.active, reply.capacity, reply.version);
        if (reply.status === 'available') {
          step.verdict = 'allocated';
          step.detail = `active ${reply.active}/${reply.capacity}`;
          step.ms = round(performance.now() - t0);
          this.record(trace, step);
          const holder: AllocationHolder = req.holder ?? { kind: 'api', client: 'unknown' };
          const allocation = new Allocation(
            {
              id,
              phone: phone.number,
              type: req.type,
              resource: device.name,
              node: entry.node,
              pid: entry.pid,
              since: Date.now(),
              trace,
              holder,
              expiresAt: req.leaseMs ? Date.now() + req.leaseMs : undefined,
            },
            this.owner,
          );
          this.held.set(id, allocation);
          if (req.leaseMs) {
            const t = setTimeout(() => {
              this.log.info({ allocation: id, device: device.name, holder }, 'allocation lease expired; releasing');
              void allocation.release();
            }, req.leaseMs);
            t.unref();
            this.leases.set(id, t);
          }
          this.emit('allocated', allocation);
          return allocation;
        }
        step.detail = `${reply.reason} (active ${reply.active}/${reply.capacity})`;
      } catch (err) {
        this.failStep(step, err, entry.pid, id);
      }
      step.ms = round(performance.now() - t0);
      this.record(trace, step);
    }
    this.emit('failed', trace);
    throw new AllocationError('no_resource', `no ${req.type} available for phone ${phone.number}`, trace);
  }

  /** The walk that an allocation would make now; reads device status, allocates nothing. */
  async explain(req: AllocationRequest): Promise<Trace> {
    const { trace, ctx } = this.begin(req, true);
    await this.watchReach(ctx.mrgl);
    let chosen = false;
    for (const item of walk(ctx)) {
      if ('step' in item) {
        trace.steps.push(item.step);
        continue;
      }
      const { group, device, entry } = item.candidate;
      const step: TraceStep = { group, device: device.name, verdict: 'unavailable', node: entry.node, pid: entry.pid };
      if (chosen) {
        // Listed so the admin sees the alternatives behind the chosen device.
        step.verdict = 'not_reached';
        trace.steps.push(step);
        continue;
      }
      const t0 = performance.now();
      try {
        const s = DeviceStatus.parse(await this.post.call(entry.pid, { op: 'status' }, this.opts.requestTimeoutMs));
        if (s.available > 0) {
          step.verdict = 'would_allocate';
          chosen = true;
        }
        step.detail = `${s.draining ? 'draining, ' : ''}active ${s.active}/${s.capacity}`;
      } catch (err) {
        this.failStep(step, err, undefined, undefined);
      }
      step.ms = round(performance.now() - t0);
      trace.steps.push(step);
    }
    return trace;
  }

  /** The release of a held allocation on its device (Allocation.release, once). */
  private async sendRelease(a: Allocation): Promise<LegQuality[] | undefined> {
    const id = a.id;
    this.forget(id);
    let quality: LegQuality[] | undefined;
    try {
      const r = ReleaseReply.parse(
        await this.post.call(a.pid, { op: 'release', allocation_id: id }, this.opts.requestTimeoutMs),
      );
      this.loads.observe(a.resource, r.active, r.capacity, r.version);
      quality = r.quality;
      if (!r.released)
        this.log.warn({ allocation: id, device: a.resource }, 'device did not know the allocation on release');
    } catch (err) {
      // The device's node is gone: its process restarts empty or reclaims our lease when it sees us down.
      this.log.warn({ allocation: id, device: a.resource, err: errorMessage(err) }, 'release not confirmed');
    }
    this.log.debug({ allocation: id, device: a.resource }, 'released');
    this.emit('released', a);
    return quality;
  }

  /** Opens (or updates) an allocation's media on its device process (Allocation.media). */
  private async sendMedia(a: Allocation, req: Omit<MediaRequest, 'op' | 'allocation_id'>): Promise<MediaReply> {
    const id = a.id;
    // Confidential: the legs may carry SRTP keys (a signed bus seals it, or refuses to send it).
    const msg = { op: 'media', allocation_id: id, ...req } as const;
    // Asking again is safe (the device opens an allocation's media once, later requests update it), and a
    // device whose node is slow for a moment (opening sockets, a stall) should not leave a call silent.
    for (let attempt = 1; ; attempt++) {
      try {
        return MediaReply.parse(await this.post.call(a.pid, msg, this.opts.requestTimeoutMs, { confidential: true }));
      } catch (err) {
        if (!(err instanceof BusTimeoutError) || attempt >= MEDIA_ATTEMPTS || !a.held) throw err;
        this.log.warn(
          { allocation: id, device: a.resource, attempt },
          'media request not answered in time; asking again',
        );
      }
    }
  }

  /**
   * Conference cascade: links the room `room` on bridge `a` with the same
   * room on bridge `b` (both open: each has a participant), so the two
   * rooms exchange their mixes over one RTP link. Idempotent.
   */
  async linkRooms(room: string, a: string, b: string): Promise<void> {
    const pidOf = (d: string) => {
      const found = this.devices.lookup(d);
      if (!found.registered) throw new Error(`${d} is not registered (${found.reason})`);
      return found.entry.pid;
    };
    const [pa, pb] = [pidOf(a), pidOf(b)];
    const t = this.opts.requestTimeoutMs;
    // The link is SRTP whenever both bridges do it: each link leg keeps the key it made for itself (linking
    // again, as every new participant on the second bridge does, changes no key), the other learns it; all sealed.
    const secure = this.model.resources.get(a)?.srtp === true && this.model.resources.get(b)?.srtp === true;
    const keys = (rx: string | undefined) => (secure ? { srtp: rx ? { rx } : {} } : {});
    const confidential = { confidential: true };
    const ea = LinkReply.parse(
      await this.post.call(pa, { op: 'link', room, peer: b, ...keys(undefined) }, t, confidential),
    );
    const eb = LinkReply.parse(
      await this.post.call(
        pb,
        { op: 'link', room, peer: a, remote: { address: ea.address, port: ea.port }, ...keys(ea.key) },
        t,
        confidential,
      ),
    );
    await this.post.call(
      pa,
      { op: 'link', room, peer: b, remote: { address: eb.address, port: eb.port }, ...keys(eb.key) },
      t,
      confidential,
    );
  }

  /** The device released an allocation itself (its media was lost; a bus message names it): call control re-homes the call. */
  lost(id: string, reason: string): boolean {
    const a = this.held.get(id);
    if (!a) return false;
    this.log.warn({ allocation: id, device: a.resource, reason }, 'allocation lost: the device released it');
    return a.markLost(reason);
  }

  private forget(id: string): void {
    this.held.delete(id);
    clearTimeout(this.leases.get(id));
    this.leases.delete(id);
  }

  get(id: string): Allocation | undefined {
    return this.held.get(id);
  }

  allocations(): Allocation[] {
    return [...this.held.values()];
  }

  /**
   * Asks the device processes whether they still hold what this node thinks
   * it holds. After this node was silent for a while (a stall, a cut
   * network) the others may have declared it down and reclaimed its leases:
   * those are reported lost here, so call control re-homes the calls instead
   * of holder and device disagreeing in silence. Returns how many were lost.
   * `node`: only the allocations on that node's devices (it was silent).
   */
  async reconcile(reason: string, node?: string): Promise<number> {
    const byPid = new Map<Pid, Allocation[]>();
    for (const a of this.held.values()) {
      if (node === undefined || a.node === node) byPid.set(a.pid, [...(byPid.get(a.pid) ?? []), a]);
    }
    let lost = 0;
    await Promise.all(
      [...byPid].map(async ([pid, allocations]) => {
        let status: DeviceStatus;
        try {
          status = DeviceStatus.parse(await this.post.call(pid, { op: 'status' }, this.opts.requestTimeoutMs));
        } catch {
          return; // unreachable: liveness decides about that node
        }
        const there = new Set(status.allocations.map((x) => x.id));
        for (const a of allocations) {
          if (there.has(a.id) || !a.held) continue;
          lost++;
          this.log.warn(
            { allocation: a.id, device: a.resource, device_node: a.node, reason },
            'allocation lost: the device no longer holds it',
          );
          a.markLost(`${a.resource} no longer holds it (${reason})`);
        }
      }),
    );
    return lost;
  }

  /** The device's node went down or restarted: every allocation on it is lost. */
  nodeLost(node: string, reason: string): void {
    for (const a of [...this.held.values()]) {
      if (a.node !== node) continue;
      this.log.warn({ allocation: a.id, device: a.resource, device_node: node, reason }, 'allocation lost');
      a.markLost(reason);
    }
  }

  /**
   * The mapping table holds the devices this walk may reach (an MRGL handed
   * over in a SIP header or the API may name nodes this one does not watch yet:
   * their entries are read first, once).
   */
  private async watchReach(mrgl: string | undefined): Promise<void> {
    await this.devices.watchNodes(this.model.deviceNodesOfMrgl(mrgl));
  }

  private begin(req: AllocationRequest, verbose: boolean): { phone: PhoneSpec; trace: Trace; ctx: WalkContext } {
    // (a trunk's calls take devices from its device pool's MRGL as a phone's do)
    const phone = this.model.party(req.phone);
    if (!phone) throw new AllocationError('unknown_phone', `unknown phone "${req.phone}"`);
    if (!phone.callManagers.includes(this.opts.node)) {
      throw new AllocationError(
        'not_local',
        `phone ${phone.number} is controlled by ${phone.node}, not ${this.opts.node}`,
        undefined,
        { controller: phone.node },
      );
    }
    if (req.mrgl !== undefined && !this.model.mrgls.has(req.mrgl)) {
      throw new AllocationError('unknown_mrgl', `unknown media resource group list "${req.mrgl}"`);
    }
    const { mrgl, source } = req.resolvedMrgl ?? this.model.resolveMrgl(phone, { request: req.mrgl });
    const trace: Trace = { phone: phone.number, type: req.type, mrgl: mrgl ?? null, mrgl_source: source, steps: [] };
    const ctx: WalkContext = {
      model: this.model,
      devices: this.devices,
      loads: this.loads,
      phone,
      type: req.type,
      mrgl,
      requirement: req.requirement ?? {},
      verbose,
      preferred: req.preferred,
    };
    return { phone, trace, ctx };
  }

  private failStep(step: TraceStep, err: unknown, pid: Pid | undefined, allocationId: string | undefined): void {
    if (err instanceof BusTimeoutError) {
      step.verdict = 'timeout';
      step.detail = `no answer within ${err.timeoutMs} ms`;
      // The request may still be handled late: make sure it does not leak a unit.
      if (pid && allocationId)
        void this.post
          .call(pid, { op: 'release', allocation_id: allocationId }, this.opts.requestTimeoutMs)
          .catch(() => {});
    } else if (err instanceof NoRespondersError) {
      step.verdict = 'timeout';
      step.detail = 'no responders: the node is not serving';
    } else if (err instanceof RemoteProcessError && err.code === 'no_such_process') {
      step.verdict = 'not_registered';
      step.detail = 'stale PID: the device process is gone';
    } else {
      step.verdict = 'unavailable';
      step.detail = `error: ${errorMessage(err)}`;
      this.log.warn({ err, device: step.device }, 'allocation request failed');
    }
  }

  private record(trace: Trace, step: TraceStep): void {
    trace.steps.push(step);
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ phone: trace.phone, type: trace.type, ...step }, 'allocation decision');
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
