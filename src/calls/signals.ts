// Call signalling between call managers. A call between phones on two nodes
// has two halves, one on each phone's node; they exchange these messages
// over the bus (to themselves for a call inside one node). Validated on
// arrival like every bus message.
import { z } from 'zod';

const CallId = z.string().regex(/^[A-Za-z0-9-]{8,64}$/);
const Sdp = z.string().min(1).max(16_384);
/** which half of the call a signal is for (both may be on one node) */
const Role = z.enum(['caller', 'callee']);
const Digit = z.string().regex(/^[0-9*#A-Da-d]$/);
const DurationMs = z.number().int().min(0).max(10_000);
const Number_ = z.string().regex(/^[0-9]{2,15}$/);
const NodeName = z.string().min(1).max(64);
const TrunkName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/);
const OutsideNumber = z.string().regex(/^\+?[0-9*#]{1,32}$/);
const Room = z.string().regex(/^[A-Za-z0-9-]{1,64}$/);

export const CallSignal = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('setup'),
    call: CallId,
    /** number: a phone's, or (a call in from a trunk) the trunk's name, with the outside caller's number as `calling` */
    caller: z.strictObject({
      number: z.union([Number_, TrunkName]),
      node: NodeName,
      display: z.string().max(128).optional(),
      calling: OutsideNumber.optional(),
    }),
    /** a phone's number, or (with `trunk`) the number sent out through that trunk */
    callee: z.union([Number_, OutsideNumber]),
    trunk: TrunkName.optional(),
    offer: Sdp,
    /** attended transfer: the callee's phone is already in a call with the transferor, which this call replaces (RFC 3891) */
    replaces: z.strictObject({ call: CallId, role: Role, transferor: Number_ }).optional(),
  }),
  z.strictObject({ op: z.literal('progress'), call: CallId, to: Role, status: z.number().int().min(180).max(199) }),
  z.strictObject({ op: z.literal('answer'), call: CallId, to: Role, sdp: Sdp }),
  z.strictObject({
    op: z.literal('reject'),
    call: CallId,
    to: Role,
    status: z.number().int().min(300).max(699),
    reason: z.string().max(200),
  }),
  z.strictObject({ op: z.literal('hangup'), call: CallId, to: Role, reason: z.string().max(200) }),
  /** a new offer inside the call (hold, resume, a new media address) */
  z.strictObject({ op: z.literal('reoffer'), call: CallId, to: Role, sdp: Sdp }),
  z.strictObject({
    op: z.literal('reanswer'),
    call: CallId,
    to: Role,
    sdp: Sdp.optional(),
    status: z.number().int().min(200).max(699),
  }),
  /**
   * transfer: the other half's phone referred this half's phone to `target`
   * (RFC 3515); attended, the target's half of the transferor's consultation call to take over
   */
  z.strictObject({
    op: z.literal('transfer'),
    call: CallId,
    to: Role,
    target: Number_,
    replaces: z.strictObject({ call: CallId, role: Role }).optional(),
  }),
  /**
   * blind transfer, from the transferee's half (now the caller of the new call) to the transferor's half:
   * how the new call ended up (200: the target answered); the transferor's phone gets it as the final NOTIFY
   */
  z.strictObject({
    op: z.literal('transfer_result'),
    call: CallId,
    to: Role,
    status: z.number().int().min(200).max(699),
    reason: z.string().max(200),
  }),
  /** ad hoc conference: the other half's phone joined its calls; this half's phone moves to the room on `bridge` */
  z.strictObject({
    op: z.literal('conference'),
    call: CallId,
    to: Role,
    room: Room,
    bridge: z.string().min(1).max(64),
    owner: NodeName,
    number: Number_,
  }),
  /** from the owner of an ad hoc conference to each participant's node: the roll, so another node can take the conference over if the owner dies */
  z.strictObject({
    op: z.literal('conference_roll'),
    room: Room,
    owner: NodeName,
    initiator: Number_,
    bridge: z.string().min(1).max(64),
    participants: z.array(z.strictObject({ number: Number_, node: NodeName, call: CallId, role: Role })).max(64),
  }),
  /** to the node that owns an ad hoc conference: a participant's half ended */
  z.strictObject({ op: z.literal('conference_left'), room: Room, call: CallId, role: Role, node: NodeName }),
  /** from the owner of an ad hoc conference down to two: this participant becomes a party of a two-party call again */
  z.strictObject({
    op: z.literal('pair'),
    call: CallId,
    to: Role,
    new_call: CallId,
    role: Role,
    far: Number_,
    far_node: NodeName,
  }),
  /** a DTMF digit from one half's phone, for the other half to deliver */
  z.strictObject({ op: z.literal('dtmf'), call: CallId, to: Role, digit: Digit, duration_ms: DurationMs }),
  /** from a device's node to the node holding the allocation: a relay heard a digit for a SIP INFO party */
  z.strictObject({
    op: z.literal('device_dtmf'),
    allocation: z.string().min(1).max(64),
    from_leg: z.union([z.literal(0), z.literal(1)]),
    digit: Digit,
    duration_ms: DurationMs,
  }),
  /** from a device's node to the node holding the allocation: its media is gone (a media worker died) and the device released it */
  z.strictObject({ op: z.literal('device_lost'), allocation: z.string().min(1).max(64), reason: z.string().max(200) }),
  /** reconciliation after a silence: which of these halves (of calls with the asking node) are gone here */
  z.strictObject({
    op: z.literal('audit'),
    node: NodeName,
    halves: z.array(z.strictObject({ call: CallId, to: Role })).max(10_000),
  }),
]);
export type CallSignal = z.infer<typeof CallSignal>;
/** A signal as a half writes it; the bus layer adds which half it is for. */
export type OutgoingSignal = CallSignal extends infer S
  ? S extends { to: unknown }
    ? Omit<S, 'to'>
    : S extends { op: 'setup' | 'conference_left' | 'audit' | 'conference_roll' }
      ? S
      : never
  : never;

export const CallSignalReply = z.union([
  z.strictObject({ ok: z.literal(true) }),
  /** the answer to an audit: the halves asked about that this node does not have (any more) */
  z.strictObject({ ok: z.literal(true), missing: z.array(z.strictObject({ call: CallId, to: Role })) }),
  z.strictObject({ ok: z.literal(false), status: z.number().int().min(300).max(699), reason: z.string().max(200) }),
]);
export type CallSignalReply = z.infer<typeof CallSignalReply>;
