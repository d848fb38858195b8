// One half of a call: the leg between this call manager and one of its
// phones, and what this node inserted on that leg (MTP, transcoder, MOH,
// conference bridge). The other half lives on the other phone's node; the two
// talk through call signals (signals.ts).
import type { SessionDescription } from 'sdp-transform';
import type { PhoneSpec, ResolvedMrgl, TrunkSpec } from '../config/model.ts';
import type { Codec } from '../config/schema.ts';
import type { MediaResourceType } from '../config/schema.ts';
import type { Allocation } from '../mrm/mediaResourceManager.ts';
import type { Requirement } from '../cluster/messages.ts';
import type { SipRequest } from '../sip/message.ts';
import { audioOf, endpointSdp, type AudioInfo, type Direction } from '../sip/sdp.ts';
import type { ServerTransaction } from '../sip/transactions.ts';
import type { Dialog } from './dialog.ts';
import type { MediaEndpoint } from './mediaPlan.ts';
import { Sdes } from './sdes.ts';
import type { TrunkPeer } from './trunkPeers.ts';
import { TandemError } from '../errors.ts';

/** What an outbound call's caller half keeps of its route while it is tried. */
export interface TrunkRoute {
  number: string;
  trunks: readonly string[];
  /** index in `trunks` of the trunk tried now */
  at: number;
  /** plans the caller's leg for a trunk (its devices), and gives the offer the trunk is sent */
  plan(trunk: TrunkSpec): Promise<void>;
  offer(): SessionDescription;
}

export type Role = 'caller' | 'callee';

/** The role of the other half of a call. */
export const otherRole = (role: Role): Role => (role === 'caller' ? 'callee' : 'caller');
export type HalfState = 'setup' | 'ringing' | 'up' | 'ended';

/** A device inserted into the media path of this leg. */
export interface Insert {
  type: MediaResourceType;
  allocation: Allocation;
  why: string;
  /** the device's address towards this leg's phone, and towards the far end */
  phoneSide: MediaEndpoint;
  farSide: MediaEndpoint;
  /** transcoder: the codecs on each side */
  phoneCodecs?: Codec[];
  farCodecs?: Codec[];
  /** transcoder: planned from codecs learnt of the callee (not configured), which may be out of date */
  learnt?: boolean;
  /** the device opened RTP legs for it (false: no media plane on its node) */
  media: boolean;
  /** 1 (conference seat) or 2 (relay: towards the phone, towards the far end) */
  legs: 1 | 2;
  /** the remote addresses last given to the device, per side */
  pushed: { phone?: string; far?: string; farCodec?: Codec | undefined };
  /** MTP: how the party behind each leg takes DTMF (legs towards the phone, the far end) */
  dtmf?: ['rfc4733' | 'sip_info', 'rfc4733' | 'sip_info'];
  /** what it was asked for, to ask again for a replacement when its node dies */
  ask: InsertRequest;
}

export interface InsertRequest {
  requirement?: Requirement;
  optional?: boolean;
  codecs?: [Codec | undefined, Codec | undefined];
  room?: string;
  dtmf?: ['rfc4733' | 'sip_info', 'rfc4733' | 'sip_info'];
  preferred?: { device: string; group: string };
}

/** What a callee half through a trunk keeps while it is set up: the number called, who calls, the servers tried. */
export interface TrunkOut {
  number: string;
  from: { number: string; display?: string };
  /** the trunk's servers when the call began, and the index of the one tried now */
  servers: readonly TrunkPeer[];
  peer: number;
  /** the index of the server we gave credentials to */
  authed?: number;
}

/** What only a caller half keeps while its call is set up (its phone's INVITE). */
export interface CallerSetup {
  readonly role: 'caller';
  /** the phone's initial INVITE, answered when the far end answers */
  invite?: ServerTransaction;
  /** the phone's INVITE had no SDP; its answer comes with its ACK (DelayedOffer) */
  delayedOffer: boolean;
  /** a call out through trunks: the number sent and the trunks tried (TrunkCalls) */
  trunkRoute?: TrunkRoute;
}

/** What only a callee half keeps while its call is set up (our INVITE to its phone or trunk). */
export interface CalleeSetup {
  readonly role: 'callee';
  /** our INVITE to the phone (CANCEL needs it) */
  outInvite?: SipRequest;
  gotProvisional: boolean;
  cancelWanted: boolean;
  ringTimer?: NodeJS.Timeout;
  /** through a trunk: the number called, who calls, the server our INVITE went to */
  trunkOut?: TrunkOut;
}

export type CallSetupState = CallerSetup | CalleeSetup;
type SetupOf<R extends Role> = Extract<CallSetupState, { role: R }>;

const freshSetup = (role: Role): CallSetupState =>
  role === 'caller' ? { role, delayedOffer: false } : { role, gotProvisional: false, cancelWanted: false };

/** A step for one role's half was taken on the other's (a bug in call control, not a peer's fault). */
export class HalfRoleError extends TandemError {
  constructor(key: string, wanted: Role) {
    super(`call half ${key} is not the ${wanted}'s`);
  }
}

/** What a half becomes when it changes calls (a transfer, an ad hoc conference down to two). */
export interface Rekey {
  call: string;
  role: Role;
  far: string;
  peerNode: string | undefined;
}

/** The moves a half may make: nothing comes back from 'ended', nothing rings again once answered. */
const NEXT: Readonly<Record<HalfState, readonly HalfState[]>> = {
  setup: ['ringing', 'up', 'ended'],
  ringing: ['ringing', 'up', 'ended'],
  up: ['up', 'ended'],
  ended: [],
};

export class HalfCall {
  private state_: HalfState = 'setup';
  /** when the call was first answered (its call detail record's talk time starts there) */
  answeredAt: number | undefined;
  get state(): HalfState {
    return this.state_;
  }

  /** The phone (or the far end) is ringing. False when the half is already answered or ended. */
  ring(): boolean {
    return this.move('ringing');
  }

  /** The call is answered (again, after a re-answer). False when the half has ended. */
  answer(): boolean {
    if (!this.move('up')) return false;
    this.answeredAt ??= Date.now();
    return true;
  }

  /** The half is over. False when it already was. */
  end(): boolean {
    return this.move('ended');
  }

  private move(next: HalfState): boolean {
    if (!NEXT[this.state_].includes(next)) return false;
    this.state_ = next;
    return true;
  }
  dialog: Dialog | undefined;
  /** a re-INVITE from the phone waiting for the far end's answer */
  pendingReinvite: ServerTransaction | undefined;
  inserts: Insert[] = [];
  /** music on hold played to this leg's phone while the far end holds it, and its endpoint */
  moh: Allocation | undefined;
  mohSide: MediaEndpoint | undefined;
  /**
   * Replacements held ready while a device's node is silent (make before
   * break): by the allocation each would replace. Released when the
   * node is heard again; wired in at once if it is declared down.
   */
  readonly standby = new Map<Allocation, Allocation>();
  /** SRTP keys and suites of the two SDP boundaries */
  readonly sdes = new Sdes();
  private holding_ = false;
  private held_ = false;
  private conference_: { readonly room: string; readonly owner: string } | undefined;
  /** this leg's phone put the far end on hold (phoneHolds) */
  get holding(): boolean {
    return this.holding_;
  }
  /** this leg's phone is held by the far end (heldByFar) */
  get held(): boolean {
    return this.held_;
  }
  /** an ad hoc conference participant: the room and the node that owns the conference (joinRoom, leaveRoom) */
  get conference(): { readonly room: string; readonly owner: string } | undefined {
    return this.conference_;
  }
  /** where this leg's phone receives media, and what it offered (from its latest SDP) */
  phoneRemote: MediaEndpoint | undefined;
  phoneAudio: AudioInfo | undefined;
  /** where the far end receives media (from its latest SDP) */
  farRemote: MediaEndpoint | undefined;
  /** the latest SDP from each side (to rebuild offers when a device is replaced) */
  lastFarSdp: SessionDescription | undefined;
  lastPhoneSdp: SessionDescription | undefined;
  /**
   * we re-offered to the far end ourselves: its re-answer needs no reply;
   * 'devices' (a device was replaced: they learn the far end), 'phone' (a
   * new far end: our phone is moved to it as well)
   */
  selfReoffer: false | 'devices' | 'phone' = false;
  /** the audio source of the music on hold playing to the phone */
  mohSource: number | undefined;
  /** the callee refused the codecs once and the call went on through a transcoder (CodecFallback) */
  codecRetried = false;
  /** the callee refused SRTP once and the call went on in clear towards it through an MTP (SrtpFallback) */
  srtpRetried = false;
  readonly since = Date.now();
  private readonly sessionId = Math.floor(Math.random() * 1e9);
  private sdpVersion = 1;

  /** the callee refused codecs learnt of it, and was offered the caller's own once (CodecFallback) */
  learntRetried = false;
  /** transferred (REFER): this half is the caller of a new call to the target, its phone on hold meanwhile */
  transferring = false;
  /** transferred: the transferor's half, told how the new call ended up (transferOutcome) */
  referredBy: { call: string; role: Role; node: string } | undefined;
  /** blind transfer, on the transferor's half: waiting for the outcome, ended by it or by this timer */
  referring: NodeJS.Timeout | undefined;

  /** what this half's role keeps while the call is set up; a new one when the half changes calls (rekey) */
  private setup_: CallSetupState;

  constructor(
    /** the call; it changes when the half is given a new call (rekey) */
    public call: string,
    /** this half's role, or what it keeps of its set-up as that role (CallSetup holds on to it) */
    setup: Role | CallSetupState,
    readonly phone: PhoneSpec,
    /** the other party's number, or the conference number */
    public far: string,
    /** the node of the other half; undefined for a conference (no other half) */
    public peerNode: string | undefined,
    /** the MRGL of this half's phone for the call, and where it came from */
    readonly mrgl: ResolvedMrgl,
  ) {
    this.setup_ = typeof setup === 'string' ? freshSetup(setup) : setup;
  }

  get role(): Role {
    return this.setup_.role;
  }

  /** The caller's set-up state, if this is the caller's half. */
  get caller(): CallerSetup | undefined {
    return this.setup_.role === 'caller' ? this.setup_ : undefined;
  }

  /** The callee's set-up state, if this is the callee's half. */
  get callee(): CalleeSetup | undefined {
    return this.setup_.role === 'callee' ? this.setup_ : undefined;
  }

  /** The set-up state of a half that must be of this role (a step only that role takes); throws HalfRoleError. */
  as<R extends Role>(role: R): SetupOf<R> {
    if (this.setup_.role !== role) throw new HalfRoleError(this.key, role);
    return this.setup_ as SetupOf<R>;
  }

  /**
   * The half is given another call (CallTable.rekey keeps the table in step):
   * a new call id, role, far party and node; a new set-up state, and the
   * once-per-call retries may be made again.
   */
  rekey(to: Rekey): void {
    this.call = to.call;
    this.far = to.far;
    this.peerNode = to.peerNode;
    this.setup_ = freshSetup(to.role);
    this.codecRetried = false;
    this.srtpRetried = false;
    this.learntRetried = false;
  }

  /** The far end put this leg's phone on hold (true) or took it off (false). */
  heldByFar(held: boolean): void {
    this.held_ = held;
  }

  /** This leg's phone put the far end on hold, or resumed, by the direction of its latest offer. */
  phoneHolds(direction: Direction): void {
    this.holding_ = direction === 'sendonly' || direction === 'inactive';
  }

  /**
   * The half takes a seat in an ad hoc conference room: no far half any
   * more (the bridge is its far end), no hold or music of the call it was.
   */
  joinRoom(room: string, owner: string, number: string): void {
    this.moh = undefined;
    this.held_ = false;
    this.peerNode = undefined;
    this.far = number;
    this.conference_ = { room, owner };
  }

  /** Another node now owns the conference of this half's room (its owner died). */
  roomTakenOverBy(owner: string): void {
    if (this.conference_) this.conference_ = { room: this.conference_.room, owner };
  }

  /** The half leaves its conference room (back to a two-party call). */
  leaveRoom(): void {
    this.conference_ = undefined;
  }

  get key(): string {
    return `${this.call}/${this.role}`;
  }

  /** An SDP from the far end, as this leg's phone must see it. */
  toPhone(sdp: SessionDescription): SessionDescription {
    const a = audioOf(sdp);
    this.farRemote = { address: a.address, port: a.port };
    this.lastFarSdp = sdp;
    this.sdes.far.heard(a);
    const first = this.inserts[0];
    // Passed through: the phone's boundary carries the far end's profile and crypto.
    if (!first) {
      this.sdes.phone.on = a.srtp !== undefined;
      return sdp;
    }
    const codecs = this.inserts.find((i) => i.phoneCodecs)?.phoneCodecs ?? a.codecs;
    return this.own(first.phoneSide, codecs, a.direction);
  }

  /** An SDP from this leg's phone, as the far end must see it. */
  toFar(sdp: SessionDescription): SessionDescription {
    const a = audioOf(sdp);
    this.notePhone(a);
    this.lastPhoneSdp = sdp;
    const last = this.inserts[this.inserts.length - 1];
    if (!last) {
      this.sdes.far.on = a.srtp !== undefined;
      return sdp;
    }
    const codecs = this.inserts.find((i) => i.farCodecs)?.farCodecs ?? a.codecs;
    return this.own(last.farSide, codecs, a.direction, this.farEventPt, 'far');
  }

  /** Remembers where the phone receives, what it can do and the key it sends with (from any SDP it sent). */
  notePhone(a: AudioInfo): void {
    this.phoneRemote = { address: a.address, port: a.port };
    this.phoneAudio = a;
    this.sdes.phone.heard(a);
  }

  /**
   * An SDP of one of our own endpoints (successive versions of one session).
   * telephone-event gets the number the party facing it uses: by default this
   * half's phone's. With SRTP on that boundary: RTP/SAVP and the endpoint's key.
   */
  own(
    at: MediaEndpoint,
    codecs: readonly Codec[],
    direction: Direction,
    eventPt = this.phoneEventPt,
    side: 'phone' | 'far' = 'phone',
  ): SessionDescription {
    const crypto = this.sdes[side].crypto(at);
    return endpointSdp({
      address: at.address,
      port: at.port,
      codecs,
      direction,
      sessionId: this.sessionId,
      version: this.sdpVersion,
      telephoneEventPt: eventPt,
      crypto,
    });
  }

  /** The payload type this half's phone uses for telephone-event (undefined: none offered, or not known yet). */
  get phoneEventPt(): number | undefined {
    return this.phoneAudio?.telephoneEventPt;
  }

  /** The payload type the far end uses for telephone-event, from its last SDP. */
  get farEventPt(): number | undefined {
    return this.lastFarSdp ? audioOf(this.lastFarSdp).telephoneEventPt : undefined;
  }

  /**
   * Every SDP this half sends its phone goes out with Tandem's origin: one
   * session id for the dialog and the version one up each time (RFC 3264
   * §8), whether it was built here (MOH, a bridge) or passed on from the far
   * end, whose own origin would otherwise change mid-dialog.
   */
  forPhone(sdp: SessionDescription): SessionDescription {
    const address = sdp.origin?.address ?? sdp.connection?.ip ?? '0.0.0.0';
    return {
      ...sdp,
      origin: {
        username: 'tandem',
        sessionId: this.sessionId,
        sessionVersion: this.sdpVersion++,
        netType: 'IN',
        ipVer: 4,
        address,
      },
    };
  }

  allocations(): Allocation[] {
    return [...this.inserts.map((i) => i.allocation), ...(this.moh ? [this.moh] : []), ...this.standby.values()];
  }
}
