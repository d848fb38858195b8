// The device process of one media resource device: the only writer of its
// allocations. Capacity can never be oversubscribed because every allocate
// and release goes through the mailbox, one at a time.
import type { ResourceSpec } from '../config/model.ts';
import { DeviceProcess, ProcessError, type Sender } from '../cluster/deviceProcess.ts';
import {
  DeviceRequest,
  type AllocateReply,
  type AllocateRequest,
  type DeviceStatus,
  type MediaReply,
  type LinkReply,
  type LinkRequest,
  type MediaRequest,
  type ReleaseReply,
} from '../cluster/messages.ts';
import { pidNode, type Pid } from '../cluster/pid.ts';
import { capacityOf } from './kind.ts';
import { DEVICE_KINDS } from './kinds.ts';
import type { MediaEvent, MediaPlane, MediaSession } from '../media/mediaPlane.ts';
import { errorMessage } from '../errors.ts';

/** how long a release waits for its media's final figures (a stuck worker gets none recorded) */
const QUALITY_WAIT_MS = 250;

/** `p`, or undefined when it has not settled within `ms`. */
function withinMs<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

interface Lease {
  id: string;
  phone: string;
  requesterNode: string;
  requesterBoot: string;
  since: number;
  media?: MediaSession | undefined;
}

export interface MediaResourceHooks {
  /** told after every change of the active count (load reports) */
  onLoad(name: string, active: number, capacity: number, version: number): void;
  /** told of every new lease, so liveness can watch a requester it has not heard from yet */
  onLease(requester: { node: string; boot: string }): void;
  /** the node's media plane; undefined when the node has no rtp section */
  media?: MediaPlane | undefined;
  /** the threads that plane runs on (capacity: auto) */
  mediaThreads?: number;
  /** something happened in an allocation's media (a DTMF digit for a SIP INFO party): tell its holder */
  onMediaEvent?(holder: { node: string; allocation: string }, event: MediaEvent): void;
  /** why a conference link to `peer` at `remote` must be refused (not a bridge of the cluster, not its media address), or undefined */
  linkProblem?(peer: string, remote: { address: string; port: number } | undefined): string | undefined;
}

/** Local-only messages (never accepted from the bus). */
export type ReclaimMessage = { op: 'reclaim'; node: string; boot: string | undefined };
/** From its own node (tandem apply): the device's new spec; `retire`: drain for good (removed from the config). */
export type ReconfigureMessage = { op: 'reconfigure'; spec: ResourceSpec } | { op: 'retire' };
/** From its own media plane: the lease's media is gone; the lease is released (the holder is told separately). */
export type LostMessage = { op: 'lost'; allocation_id: string };
/** A request from the bus, with the node that signed it (absent on an unsigned bus). */
export type SignedDeviceRequest = DeviceRequest & { sender?: string };
export type MediaResourceMessage = SignedDeviceRequest | ReclaimMessage | ReconfigureMessage | LostMessage;
export type MediaResourceReply =
  | AllocateReply
  | ReleaseReply
  | DeviceStatus
  | MediaReply
  | LinkReply
  | { reclaimed: number }
  | { played: true };

export class MediaResourceProcess extends DeviceProcess<MediaResourceMessage, MediaResourceReply> {
  private readonly leases = new Map<string, Lease>();
  private outOfResources = 0;
  /** drained by an operator: no new allocations, the ones in use finish */
  private draining = false;
  /** grows with every change of the active count (see LoadReport) */
  private version = 0;

  /** removed from the config: drains, and its node drops it once idle */
  private retired = false;

  constructor(
    pid: Pid,
    private spec_: ResourceSpec,
    private readonly hooks: MediaResourceHooks,
  ) {
    super(pid, spec_.name);
  }

  get spec(): ResourceSpec {
    return this.spec_;
  }

  /** Units it carries: as configured, or its kind's per-core figure times its node's media threads (capacity: auto). */
  get capacity(): number {
    return capacityOf(DEVICE_KINDS[this.spec_.type], this.spec_, this.hooks.mediaThreads ?? 1);
  }

  get isRetired(): boolean {
    return this.retired;
  }

  get active(): number {
    return this.leases.size;
  }

  /** units free for a new allocation now (0 while draining) */
  get available(): number {
    return this.draining ? 0 : Math.max(0, this.capacity - this.active);
  }

  /** allocation requests refused for want of capacity since start */
  get outOfResourcesCount(): number {
    return this.outOfResources;
  }

  accept(body: unknown, sender?: Sender): MediaResourceMessage {
    const r = DeviceRequest.safeParse(body);
    if (!r.success) {
      const i = r.error.issues[0];
      throw new ProcessError('bad_request', i ? `${i.path.join('.') || '(root)'}: ${i.message}` : 'invalid request');
    }
    if ((r.data.op === 'media' && r.data.legs.some((l) => l.srtp)) || (r.data.op === 'link' && r.data.srtp)) {
      if (!this.spec.srtp) throw new ProcessError('bad_request', `${this.name} does not do SRTP (srtp: false)`);
      // SRTP keys travel only encrypted between nodes (a sealed request).
      if (sender && sender.node !== pidNode(this.pid) && !sender.sealed)
        throw new ProcessError('forbidden', `SRTP keys for ${this.name} came unsealed from ${sender.node}`);
    }
    if (!sender) return r.data;
    // Drain is an operator's act: it reaches the device through its own node, which checked the operator's token.
    if (r.data.op === 'drain' && sender.node !== pidNode(this.pid))
      throw new ProcessError('forbidden', `${sender.node} may not drain ${this.name}: only its own node may`);
    // A node allocates only in its own name (and current boot).
    if (r.data.op === 'allocate' && (r.data.requester.node !== sender.node || r.data.requester.boot !== sender.boot)) {
      throw new ProcessError('forbidden', `${sender.node} may not allocate for ${r.data.requester.node}`);
    }
    return { ...r.data, sender: sender.node };
  }

  /** Only the holder of a lease (or this device's own node) may release it, steer its media or play into it. */
  private checkHolder(msg: SignedDeviceRequest & { allocation_id: string }): void {
    if (msg.sender === undefined || msg.sender === pidNode(this.pid)) return;
    const lease = this.leases.get(msg.allocation_id);
    if (lease && lease.requesterNode !== msg.sender) {
      throw new ProcessError('forbidden', `${msg.sender} does not hold allocation ${msg.allocation_id}`);
    }
  }

  protected handle(msg: MediaResourceMessage): MediaResourceReply | Promise<MediaResourceReply> {
    switch (msg.op) {
      case 'allocate':
        return this.allocate(msg);
      case 'release':
        this.checkHolder(msg);
        return this.release(msg.allocation_id);
      case 'status':
        return this.status();
      case 'drain':
        this.draining = msg.draining || this.retired;
        return this.status();
      case 'media':
        this.checkHolder(msg);
        return this.media(msg);
      case 'link':
        return this.link(msg);
      case 'dtmf': {
        this.checkHolder(msg);
        const media = this.leases.get(msg.allocation_id)?.media;
        if (!media?.playDigit)
          throw new ProcessError('bad_request', `allocation ${msg.allocation_id} has no relay to play DTMF into`);
        media.playDigit(msg.leg, msg.digit, msg.duration_ms);
        return { played: true };
      }
      case 'reclaim':
        return this.reclaim(msg.node, msg.boot);
      case 'reconfigure':
        // Shrunk below what is in use: the allocations finish, no new ones until below capacity.
        this.spec_ = msg.spec;
        this.changed();
        return this.status();
      case 'lost': {
        const lease = this.leases.get(msg.allocation_id);
        if (lease) lease.media = undefined; // already gone with its worker
        return this.release(msg.allocation_id);
      }
      case 'retire':
        this.retired = true;
        this.draining = true;
        this.changed();
        return this.status();
    }
  }

  private allocate(req: AllocateRequest): AllocateReply {
    const capacity = this.capacity;
    // Every answer carries the device's load and version (the requester's load view and the walk's trace use them).
    const load = () => ({ active: this.active, capacity, version: this.version });
    const available = (): AllocateReply => ({ status: 'available', allocation_id: req.allocation_id, ...load() });
    const unavailable = (reason: string): AllocateReply => ({ status: 'unavailable', reason, ...load() });
    if (req.type !== this.spec.type) return unavailable(`device is a ${this.spec.type}`);
    // A retried request (same id) must not take a second unit.
    if (this.leases.has(req.allocation_id)) return available();
    if (this.draining) return unavailable('draining');
    if (this.leases.size >= capacity) {
      this.outOfResources++;
      return unavailable('out of resources');
    }
    this.leases.set(req.allocation_id, {
      id: req.allocation_id,
      phone: req.phone,
      requesterNode: req.requester.node,
      requesterBoot: req.requester.boot,
      since: Date.now(),
    });
    this.changed();
    this.hooks.onLease(req.requester);
    return available();
  }

  /** Media for a lease: opened on the first request, remote addresses updated on later ones. */
  private async media(req: MediaRequest): Promise<MediaReply> {
    const lease = this.leases.get(req.allocation_id);
    if (!lease) throw new ProcessError('bad_request', `no allocation ${req.allocation_id} on ${this.name}`);
    const host = this.hooks.media;
    if (!host)
      throw new ProcessError('bad_request', `${this.name}: its node has no rtp section, so it carries no media`);
    if (lease.media) lease.media.update(req);
    else {
      try {
        lease.media = await host.session(this.spec, req, (e) => {
          // Media gone (its worker died): the lease goes too, through the mailbox like any release; the holder re-homes.
          if (e.type === 'lost') void this.deliver({ op: 'lost', allocation_id: lease.id });
          this.hooks.onMediaEvent?.({ node: lease.requesterNode, allocation: lease.id }, e);
        });
      } catch (err) {
        throw new ProcessError('bad_request', errorMessage(err), { cause: err });
      }
      // Released while the ports were being opened.
      if (!this.leases.has(req.allocation_id)) {
        lease.media.close();
        throw new ProcessError('bad_request', `allocation ${req.allocation_id} was released`);
      }
    }
    return {
      legs: lease.media.endpoints(),
      ...(lease.media.durationMs !== undefined ? { duration_ms: lease.media.durationMs } : {}),
    };
  }

  private async link(req: LinkRequest): Promise<LinkReply> {
    const host = this.hooks.media;
    if (!DEVICE_KINDS[this.spec.type].rooms || !host)
      throw new ProcessError('bad_request', `${this.name} cannot link conference rooms`);
    // A room's audio goes only to another bridge of the cluster, at its node's media address: never to an arbitrary host.
    const problem =
      req.peer === this.name ? 'a bridge cannot link to itself' : this.hooks.linkProblem?.(req.peer, req.remote);
    if (problem) throw new ProcessError('bad_request', `link refused: ${problem}`);
    try {
      return await host.linkRoom(this.spec.name, req.room, req.peer, req.remote, req.srtp);
    } catch (err) {
      throw new ProcessError('bad_request', errorMessage(err), { cause: err });
    }
  }

  /** Frees a lease; its media's figures as they ended go back to the holder (the call's record keeps them). */
  private async release(id: string): Promise<ReleaseReply> {
    const media = this.leases.get(id)?.media;
    // A worker that cannot say soon does not hold the release (and this device's mailbox) up: the figures are only for the record.
    const quality = media ? await withinMs(media.quality(), QUALITY_WAIT_MS).catch(() => undefined) : undefined;
    media?.close();
    const released = this.leases.delete(id);
    if (released) this.changed();
    return {
      released,
      active: this.active,
      capacity: this.capacity,
      version: this.version,
      ...(quality?.length ? { quality: quality.slice(0, 4) } : {}),
    };
  }

  /** The requesting node died (or restarted): its leases are void. */
  private reclaim(node: string, boot: string | undefined): { reclaimed: number } {
    let reclaimed = 0;
    for (const [id, l] of this.leases) {
      if (l.requesterNode === node && (boot === undefined || l.requesterBoot === boot)) {
        l.media?.close();
        this.leases.delete(id);
        reclaimed++;
      }
    }
    if (reclaimed) this.changed();
    return { reclaimed };
  }

  private changed(): void {
    this.version++;
    this.hooks.onLoad(this.name, this.active, this.capacity, this.version);
  }

  private status(): DeviceStatus {
    return {
      name: this.name,
      kind: 'media_resource',
      type: this.spec.type,
      pid: this.pid,
      capacity: this.capacity,
      active: this.active,
      available: this.available,
      out_of_resources: this.outOfResources,
      draining: this.draining,
      allocations: [...this.leases.values()].map((l) => ({
        id: l.id,
        phone: l.phone,
        requester: l.requesterNode,
        since: l.since,
      })),
    };
  }
}
