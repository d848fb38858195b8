// An allocation as its holder sees it: a handle that owns the unit it holds
// on a device process (anywhere in the cluster) until it is released or lost.
// Call control keeps handles, not ids: it opens media and plays DTMF through
// the handle and releases it (safe twice); the handle says when it is lost
// (its device's node died or restarted, the device dropped it, an operator
// took it) with a `lost` event. Only the media resource manager makes them.
import { EventEmitter } from 'node:events';
import type { MediaResourceType } from '../config/schema.ts';
import type { LegQuality, MediaReply, MediaRequest } from '../cluster/messages.ts';
import type { Pid } from '../cluster/pid.ts';
import type { Trace } from './trace.ts';
import { TandemError } from '../errors.ts';

export type AllocationHolder = { kind: 'call'; call: string } | { kind: 'api'; client: string };

/** what an allocation asks of the manager that made it (the handle is not the manager) */
export interface AllocationOwner {
  /** sends the release to the device; called once per allocation */
  /** gives the unit back; resolves with the media's figures as it ended, when the device said */
  releaseHeld(a: Allocation): Promise<LegQuality[] | undefined>;
  mediaOf(a: Allocation, req: Omit<MediaRequest, 'op' | 'allocation_id'>): Promise<MediaReply>;
  dtmfOf(a: Allocation, leg: 0 | 1, digit: string, durationMs: number): Promise<void>;
  /** reports a held allocation gone to the node (its holders re-home or end what used it) */
  reportLost(a: Allocation, reason: string): void;
}

export interface AllocationFacts {
  id: string;
  phone: string;
  type: MediaResourceType;
  resource: string;
  node: string;
  pid: Pid;
  since: number;
  trace: Trace;
  holder: AllocationHolder;
  /** when a leased allocation is released by itself (ms since the epoch) */
  expiresAt: number | undefined;
}

export interface AllocationEvents {
  /** the unit is gone without its holder releasing it (reason: why) */
  lost: [reason: string];
  /** released by its holder (or its lease) */
  released: [];
}

/** `held` until released or lost; both are final. */
export type AllocationState = 'held' | 'released' | 'lost';

export class AllocationGoneError extends TandemError {
  constructor(
    readonly allocation: string,
    readonly state: Exclude<AllocationState, 'held'>,
  ) {
    super(`allocation ${allocation} is ${state}`);
  }
}

export class Allocation extends EventEmitter<AllocationEvents> implements AllocationFacts {
  readonly id: string;
  readonly phone: string;
  readonly type: MediaResourceType;
  readonly resource: string;
  readonly node: string;
  readonly pid: Pid;
  readonly since: number;
  readonly trace: Trace;
  readonly holder: AllocationHolder;
  readonly expiresAt: number | undefined;
  private state_: AllocationState = 'held';
  private releasing: Promise<void> | undefined;
  private finalQuality_: readonly LegQuality[] | undefined;

  /** After release: what each media leg of the device received and sent, as it ended (when its device said). */
  get finalQuality(): readonly LegQuality[] | undefined {
    return this.finalQuality_;
  }

  constructor(
    facts: AllocationFacts,
    private readonly owner: AllocationOwner,
  ) {
    super();
    ({
      id: this.id,
      phone: this.phone,
      type: this.type,
      resource: this.resource,
      node: this.node,
      pid: this.pid,
      since: this.since,
      trace: this.trace,
      holder: this.holder,
      expiresAt: this.expiresAt,
    } = facts);
  }

  get state(): AllocationState {
    return this.state_;
  }

  get held(): boolean {
    return this.state_ === 'held';
  }

  /**
   * Opens (or updates) the allocation's media on its device: RTP legs with
   * their codecs and, once known, where each leg sends.
   */
  media(req: Omit<MediaRequest, 'op' | 'allocation_id'>): Promise<MediaReply> {
    if (this.state_ !== 'held') return Promise.reject(new AllocationGoneError(this.id, this.state_));
    return this.owner.mediaOf(this, req);
  }

  /** Plays a DTMF digit into one leg (an MTP converting for a SIP INFO party). */
  dtmf(leg: 0 | 1, digit: string, durationMs: number): Promise<void> {
    if (this.state_ !== 'held') return Promise.reject(new AllocationGoneError(this.id, this.state_));
    return this.owner.dtmfOf(this, leg, digit, durationMs);
  }

  /**
   * Gives the unit back to its device. Safe to call again, and after the
   * allocation was lost (then nothing is sent): every caller waits for the
   * same release.
   */
  release(): Promise<void> {
    if (this.releasing) return this.releasing;
    if (this.state_ !== 'held') return Promise.resolve();
    this.state_ = 'released';
    this.releasing = this.owner.releaseHeld(this).then((q) => {
      this.finalQuality_ = q;
    });
    this.emit('released');
    return this.releasing;
  }

  /**
   * Takes the allocation away from its holder (an operator's forced
   * release): released on the device, then reported lost, so call control
   * re-homes the call's media or ends the call.
   */
  async revoke(reason: string): Promise<void> {
    if (this.state_ !== 'held') return;
    await this.release();
    this.state_ = 'lost';
    this.emit('lost', reason);
    this.owner.reportLost(this, reason);
  }

  /** The unit is gone without a release (the MRM's finding): final, nothing sent. @internal */
  markLost(reason: string): boolean {
    if (this.state_ !== 'held') return false;
    this.state_ = 'lost';
    this.emit('lost', reason);
    this.owner.reportLost(this, reason);
    return true;
  }
}
