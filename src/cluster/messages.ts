// Every message that crosses the bus, as a schema. Incoming bytes are decoded
// and validated here; anything that does not match is dropped by the caller
// with a log line, so a foreign or corrupt message can never reach a device
// process or corrupt the mapping table.
import { z } from 'zod';
import { Codec, MediaResourceType, PromptName } from '../config/schema.ts';
import { MRGL_SOURCES } from '../config/model.ts';
import { decode, encode } from './codec.ts';
import { isPid, type Pid } from './pid.ts';

const PidSchema = z
  .string()
  .refine(isPid, 'not a PID')
  .transform((s) => s as Pid);
const NodeName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/);
const BootId = z.string().regex(/^[a-z0-9]{1,20}$/);

// ---- device process requests (through a node's inbox) ----

/** What the requesting phone needs from the device beyond its type. */
export const Requirement = z.strictObject({
  codecs: z.array(Codec).max(8).optional(),
  audio_source: z.number().int().min(0).max(999).optional(),
  dtmf: z
    .array(z.enum(['rfc4733', 'sip_info']))
    .max(2)
    .optional(),
  prompt: PromptName.optional(),
  /** the call needs encrypted media: only devices that do SRTP */
  srtp: z.boolean().optional(),
});
export type Requirement = z.infer<typeof Requirement>;

export const AllocateRequest = z.strictObject({
  op: z.literal('allocate'),
  allocation_id: z.string().min(1).max(64),
  requester: z.strictObject({ node: NodeName, boot: BootId }),
  phone: z.string().min(1).max(64),
  type: MediaResourceType,
});
export const ReleaseRequest = z.strictObject({
  op: z.literal('release'),
  allocation_id: z.string().min(1).max(64),
});
export const StatusRequest = z.strictObject({ op: z.literal('status') });
/** Sets up (or updates) the media of an allocation: its RTP legs and where they send. */
/** An SDES master key and salt, base64 as in an SDP inline key (30 bytes: 40 characters). */
const InlineKey = z.string().regex(/^[A-Za-z0-9+/]{40}$/, 'an SRTP key is 30 bytes of base64');
export const LegSrtp = z.strictObject({
  suite: z.enum(['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32']),
  tx: InlineKey,
  rx: InlineKey.optional(),
});
export type LegSrtp = z.infer<typeof LegSrtp>;

export const MediaRequest = z.strictObject({
  op: z.literal('media'),
  allocation_id: z.string().min(1).max(64),
  legs: z
    .array(
      z.strictObject({
        codec: Codec.optional(),
        remote: z
          .strictObject({ address: z.string().min(1).max(64), port: z.number().int().min(1).max(65535) })
          .optional(),
        /** how the party behind this leg takes DTMF (relays: sip_info legs get digits reported, not forwarded) */
        dtmf: z.enum(['rfc4733', 'sip_info']).optional(),
        /** the payload type the party behind this leg uses for RFC 4733 telephone-events (default 101) */
        telephone_event: z.number().int().min(96).max(127).optional(),
        /** SRTP on this leg (SDES): our key for what the leg sends, the far party's for what it receives (once known); fixed for the leg's life once given */
        srtp: LegSrtp.optional(),
      }),
    )
    .min(1)
    .max(2),
  /** conference: the room (meet-me number) on the bridge */
  room: z.string().min(1).max(64).optional(),
  /** music on hold: the audio source number */
  source: z.number().int().min(0).max(999).optional(),
  /** annunciator: the prompt to play (once) */
  prompt: PromptName.optional(),
});
export type MediaRequest = z.infer<typeof MediaRequest>;
export const MediaReply = z.strictObject({
  legs: z.array(z.strictObject({ address: z.string(), port: z.number().int() })),
  /** annunciator: how long the prompt plays */
  duration_ms: z.number().int().min(0).optional(),
});
export type MediaReply = z.infer<typeof MediaReply>;
/** Plays a DTMF digit into one leg of a relay as RFC 4733 telephone-events. */
export const DtmfRequest = z.strictObject({
  op: z.literal('dtmf'),
  allocation_id: z.string().min(1).max(64),
  leg: z.union([z.literal(0), z.literal(1)]),
  digit: z.string().regex(/^[0-9*#A-Da-d]$/),
  duration_ms: z.number().int().min(20).max(5000),
});
export type DtmfRequest = z.infer<typeof DtmfRequest>;
/** Drain: take no new allocations (those in use finish); undrain reverses it. */
export const DrainRequest = z.strictObject({ op: z.literal('drain'), draining: z.boolean() });
/**
 * Conference cascade: a leg of the bridge's room `room` linked to the same
 * room on another bridge (`peer`), which the two rooms use to exchange their
 * mixes; opened if missing, its remote set when given. Only for a room that
 * is open here (it has participants).
 */
export const LinkRequest = z.strictObject({
  op: z.literal('link'),
  room: z.string().regex(/^[0-9]{1,15}$/),
  peer: z.string().min(1).max(64),
  remote: z.strictObject({ address: z.string().min(1).max(64), port: z.number().int().min(1).max(65535) }).optional(),
  /** SRTP on the link: each side keeps its own sending key (given in its reply, sealed); rx is the peer's, once known */
  srtp: z.strictObject({ rx: InlineKey.optional() }).optional(),
});
export type LinkRequest = z.infer<typeof LinkRequest>;
/** key: the link leg's sending key (SRTP links; the reply to a sealed request is sealed) */
export const LinkReply = z.strictObject({ address: z.string(), port: z.number().int(), key: InlineKey.optional() });
export type LinkReply = z.infer<typeof LinkReply>;
export const DeviceRequest = z.discriminatedUnion('op', [
  AllocateRequest,
  ReleaseRequest,
  StatusRequest,
  MediaRequest,
  DtmfRequest,
  DrainRequest,
  LinkRequest,
]);
export type AllocateRequest = z.infer<typeof AllocateRequest>;
export type ReleaseRequest = z.infer<typeof ReleaseRequest>;
export type DeviceRequest = z.infer<typeof DeviceRequest>;

export const AllocateReply = z.discriminatedUnion('status', [
  z.strictObject({
    status: z.literal('available'),
    allocation_id: z.string(),
    active: z.number(),
    capacity: z.number(),
    version: z.number(),
  }),
  z.strictObject({
    status: z.literal('unavailable'),
    reason: z.string(),
    active: z.number(),
    capacity: z.number(),
    version: z.number(),
  }),
]);
export type AllocateReply = z.infer<typeof AllocateReply>;

export const DeviceStatus = z.strictObject({
  name: z.string(),
  kind: z.string(),
  type: MediaResourceType.optional(),
  pid: PidSchema,
  capacity: z.number(),
  active: z.number(),
  available: z.number(),
  out_of_resources: z.number(),
  /** takes no new allocations (tandem drain) */
  draining: z.boolean().optional(),
  allocations: z.array(z.strictObject({ id: z.string(), phone: z.string(), requester: z.string(), since: z.number() })),
});
export type DeviceStatus = z.infer<typeof DeviceStatus>;

/** A request to a node's inbox: a device process PID and what to do. */
export const Envelope = z.strictObject({ to: PidSchema, body: z.unknown() });
export type Envelope = z.infer<typeof Envelope>;

export const ReplyEnvelope = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), body: z.unknown() }),
  z.strictObject({ ok: z.literal(false), code: z.string(), error: z.string() }),
]);
export type ReplyEnvelope = z.infer<typeof ReplyEnvelope>;

// ---- node-level requests ----

/** A half of a call as a node shows it (admin API, console). */
export const CallView = z.strictObject({
  call: z.string(),
  role: z.enum(['caller', 'callee']),
  phone: z.string(),
  far: z.string(),
  peer_node: z.string().nullable(),
  state: z.string(),
  held: z.boolean(),
  holding: z.boolean(),
  /** the ad hoc conference room this half is in */
  conference: z.string().nullable(),
  since: z.number(),
  /** SRTP on the half's two boundaries: the suite towards the phone and towards the far end, null in clear */
  srtp: z.strictObject({ phone: z.string().nullable(), far: z.string().nullable() }),
  resources: z.array(
    z.strictObject({
      type: MediaResourceType,
      resource: z.string(),
      node: z.string(),
      allocation: z.string(),
      why: z.string(),
      /** the device's RTP addresses towards the phone and towards the far end (null: no media) */
      phone_side: z.string().nullable(),
      far_side: z.string().nullable(),
      /** the SRTP suite of the device's leg towards the phone and towards the far end, null in clear */
      phone_side_srtp: z.string().nullable(),
      far_side_srtp: z.string().nullable(),
    }),
  ),
});
export type CallView = z.infer<typeof CallView>;

/** One RTP leg of a media session a node hosts, with its quality (RTP counts, and RTCP from the far end). */
export const LegQuality = z.strictObject({
  local: z.string(),
  remote: z.string().nullable(),
  codec: z.string().nullable(),
  /** the SRTP suite of the leg, null in clear (never its keys) */
  srtp: z.string().nullable(),
  /** SRTP packets refused: failed authentication (tampered, wrong key) and replayed */
  srtp_auth_failures: z.number(),
  srtp_replays: z.number(),
  received: z.number(),
  sent: z.number(),
  lost: z.number(),
  jitter_ms: z.number(),
  far_fraction_lost: z.number().nullable(),
  far_jitter_ms: z.number().nullable(),
});
export type LegQuality = z.infer<typeof LegQuality>;

export const ReleaseReply = z.strictObject({
  released: z.boolean(),
  active: z.number(),
  capacity: z.number(),
  version: z.number(),
  /** the allocation's media legs as they ended (what the call's record keeps of its quality) */
  quality: z.array(LegQuality).max(4).optional(),
});
export type ReleaseReply = z.infer<typeof ReleaseReply>;

/** Something an operator wants to see happen (console event log). */
export const ClusterEvent = z.strictObject({
  at: z.number(),
  node: z.string(),
  kind: z.enum([
    'allocation_refused',
    'node_down',
    'node_up',
    'node_unreachable',
    'node_reachable',
    'isolated',
    'call_rehomed',
    'config_applied',
    'config_behind',
    'config_refused',
    'device_drained',
    'device_undrained',
    'allocation_released',
    'operator_act_refused',
  ]),
  text: z.string().max(500),
});
export type ClusterEvent = z.infer<typeof ClusterEvent>;

/** `detail`: also the node's calls, media sessions and recent events (the console's view). */
export const NodeStatusRequest = z.strictObject({
  op: z.literal('node_status'),
  detail: z.boolean().optional(),
  history: z.boolean().optional(),
  /** the last day, per minute, instead of the last hour */
  history_day: z.boolean().optional(),
});

/**
 * An operator's act carried to another node: the operator's own admin token,
 * checked there against that node's tokens. A node's key alone cannot make
 * one, so a stolen node key cannot change the configuration or drain devices
 * elsewhere. It travels only sealed (requests that carry it are confidential).
 */
export const OperatorAuthority = z.strictObject({ token: z.string().min(1).max(512) });
export type OperatorAuthority = z.infer<typeof OperatorAuthority>;

/**
 * tandem apply: a new version of the configuration to apply in place, as the
 * receiving node parsed it from YAML (plain data: the YAML parse is most of
 * the cost, so it is done once); every node validates it again in full.
 */
export const ConfigApplyRequest = z.strictObject({
  op: z.literal('config_apply'),
  config: z.record(z.string(), z.unknown()),
  /** the configuration's text as the operator wrote it (kept in each node's history of versions) */
  text: z
    .string()
    .max(4 * 1024 * 1024)
    .optional(),
  authority: OperatorAuthority,
});

/** An operator takes an allocation another node holds (a call's: it moves to another device or ends). */
export const AllocationReleaseRequest = z.strictObject({
  op: z.literal('allocation_release'),
  id: z.string().min(1).max(100),
  authority: OperatorAuthority,
});
export const AllocationReleaseReply = z.strictObject({
  node: z.string(),
  /** 200: released, 404: no such allocation there */
  status: z.number().int(),
  device: z.string().max(64).nullable(),
  call: z.string().max(100).nullable(),
});
export type AllocationReleaseReply = z.infer<typeof AllocationReleaseReply>;

/** An operator acknowledged an alarm at another node: each node that raised it marks it. */
export const AlarmAckRequest = z.strictObject({
  op: z.literal('alarm_ack'),
  key: z.string().min(1).max(200),
  authority: OperatorAuthority,
});

export const AlarmAckReply = z.strictObject({ node: z.string(), acknowledged: z.boolean() });

/** tandem drain of a device this node hosts, asked by an operator at another node. */
export const NodeDrainRequest = z.strictObject({
  op: z.literal('drain'),
  device: z.string().min(1).max(64),
  draining: z.boolean(),
  authority: OperatorAuthority,
});

/**
 * Reconciliation after a silence: a device's node asks the node its leases
 * name which of those allocations it still holds (the others were released
 * while the two could not hear each other, and are freed).
 */
export const HoldsRequest = z.strictObject({
  op: z.literal('holds'),
  allocations: z.array(z.string().min(1).max(64)).max(10_000),
});
export const HoldsReply = z.strictObject({ held: z.array(z.string()) });
export type HoldsReply = z.infer<typeof HoldsReply>;

/** A node's answer when it refuses a control request (malformed, or an operator's act without authority). */
export const ControlRefusal = z.strictObject({ error: z.string().max(2000) });

/** What the MRM decided about one device of a walk (the steps of a trace). */
export const VERDICTS = [
  /** the group is limited to another user class */
  'user_class_mismatch',
  'wrong_type',
  /** no PID in the mapping table, or the hosting node is down */
  'not_registered',
  'no_capability',
  'unavailable',
  'timeout',
  'allocated',
  /** explain only: the device has room now and would be chosen */
  'would_allocate',
  /** explain only: a candidate after the one that would be chosen */
  'not_reached',
] as const;
export type Verdict = (typeof VERDICTS)[number];

/**
 * The walk an allocation for one of the receiver's phones would make now
 * (explain, asked of a node that does not control the phone): read-only,
 * so any node may ask.
 */
export const ExplainRequest = z.strictObject({
  op: z.literal('explain'),
  phone: z.string().min(1).max(64),
  type: MediaResourceType,
  mrgl: z.string().min(1).max(64).optional(),
  requirement: Requirement.optional(),
});
export const TraceReply = z.strictObject({
  phone: z.string(),
  type: MediaResourceType,
  mrgl: z.string().nullable(),
  mrgl_source: z.enum(MRGL_SOURCES),
  steps: z
    .array(
      z.strictObject({
        group: z.string(),
        device: z.string().nullable(),
        verdict: z.enum(VERDICTS),
        detail: z.string().optional(),
        node: z.string().optional(),
        pid: z.string().optional(),
        ms: z.number().optional(),
      }),
    )
    .max(100_000),
});
/** an explain the receiving node could not make (unknown phone, unknown MRGL), or failed to make */
export const ExplainRefusal = z.strictObject({
  code: z.enum(['unknown_phone', 'not_local', 'unknown_mrgl', 'no_resource', 'internal']),
  error: z.string(),
});
export type ExplainRequest = z.infer<typeof ExplainRequest>;
export type ExplainRefusal = z.infer<typeof ExplainRefusal>;

/** A request to a node's control subject. */
/**
 * A call detail record of one half of a call (the leg between a node and its
 * phone or trunk), written by that node when the half ends. A call across
 * two nodes has two, joined by `call`.
 */
export const CallDetailRecord = z.strictObject({
  call: z.string().min(1).max(64),
  role: z.enum(['caller', 'callee']),
  node: z.string().min(1).max(64),
  /** the phone's number, or the trunk's name */
  party: z.string().min(1).max(64),
  /** the other party: the number dialled (caller) or calling (callee) */
  far: z.string().max(64),
  started_at: z.number(),
  /** null: never answered */
  answered_at: z.number().nullable(),
  ended_at: z.number(),
  /** talk time (answer to end), seconds */
  duration_s: z.number().min(0),
  reason: z.string().max(300),
  resources: z
    .array(z.strictObject({ type: z.string().max(32), resource: z.string().max(64), node: z.string().max(64) }))
    .max(32),
  /** the first codec of the party's latest SDP, and of the far end's */
  codec_party: z.string().max(16).nullable(),
  codec_far: z.string().max(16).nullable(),
  srtp: z.boolean(),
  /** what each device leg of the half received, as it ended (calls without devices: media went phone to phone, unseen) */
  quality: z
    .array(
      z.strictObject({
        resource: z.string().max(64),
        /** the leg of the device: 0 towards the party, 1 towards the far end */
        leg: z.number().int().min(0).max(3),
        received: z.number().int().min(0),
        lost: z.number().int(),
        jitter_ms: z.number().min(0),
        /** what the far end's RTCP said of our stream: fraction lost, jitter */
        far_fraction_lost: z.number().nullable(),
        far_jitter_ms: z.number().nullable(),
      }),
    )
    .max(64)
    .optional(),
});
export type CallDetailRecord = z.infer<typeof CallDetailRecord>;

/** What a search of the records asks for (every field narrows it). */
export const CdrFilter = z.strictObject({
  /** a party or the far end, as a substring */
  number: z.string().max(64).optional(),
  since: z.number().optional(),
  until: z.number().optional(),
  /** the end reason, as a substring */
  reason: z.string().max(100).optional(),
  limit: z.number().int().min(1).max(5000).default(500),
});
export type CdrFilter = z.infer<typeof CdrFilter>;
export const CdrRequest = z.strictObject({ op: z.literal('cdrs'), filter: CdrFilter });
export const CdrReply = z.strictObject({ node: z.string(), records: z.array(CallDetailRecord).max(5000) });

/** The SIP ladder of a call: the messages a node exchanged for its dialogs (secrets removed). */
export const LadderRequest = z.strictObject({ op: z.literal('ladder'), call: z.string().min(1).max(100) });
export const LadderMessage = z.strictObject({
  at: z.number(),
  dir: z.enum(['in', 'out']),
  peer: z.string().max(200),
  first: z.string().max(2000),
  call_id: z.string().max(500),
  text: z.string().max(6000),
});
export type LadderMessage = z.infer<typeof LadderMessage>;
export const LadderReply = z.strictObject({ node: z.string(), messages: z.array(LadderMessage).max(5000) });

export const NodeControlRequest = z.discriminatedUnion('op', [
  NodeStatusRequest,
  ConfigApplyRequest,
  NodeDrainRequest,
  AlarmAckRequest,
  AllocationReleaseRequest,
  HoldsRequest,
  ExplainRequest,
  CdrRequest,
  LadderRequest,
]);
/** a control request as it is sent (before defaults are filled in) */
export type NodeControlRequestIn = z.input<typeof NodeControlRequest>;

export const ConfigApplyReply = z.strictObject({
  node: z.string(),
  /** down: the node was not up to take it (it runs its own file when it starts) */
  status: z.enum(['applied', 'unchanged', 'refused', 'down', 'unreachable']),
  /** the version the node runs after this */
  version: z.string().nullable(),
  changes: z.array(z.string()),
  problems: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});
export type ConfigApplyReply = z.infer<typeof ConfigApplyReply>;
/** A trunk as the node that carries it sees it (the console's trunk view; never its credentials). */
export const TrunkStatus = z.strictObject({
  trunk: z.string().max(64),
  /** the nodes that carry it */
  nodes: z.array(z.string().max(64)).max(8),
  /** its far end's addresses, as this node's OPTIONS keep-alive sees them (last_status 0: no answer in time; null: not probed yet) */
  peers: z
    .array(z.strictObject({ peer: z.string().max(300), up: z.boolean(), last_status: z.number().nullable() }))
    .max(64),
  /** calls through it since this node started: in, out, and the failures of calls out by reason */
  attempts: z.strictObject({ in: z.number().int().min(0), out: z.number().int().min(0) }).optional(),
  failures: z.record(z.string().max(32), z.number().int().min(0)).optional(),
  /** calls through it on this node now, and at most */
  calls: z.number().int().min(0),
  max_calls: z.number().int().min(0),
  /** outbound registration, when the trunk registers */
  registration: z
    .strictObject({
      trunk: z.string().max(64),
      state: z.string().max(32),
      expires_at: z.number().nullable(),
      last_error: z.string().max(300).nullable(),
      successes: z.number().int().min(0),
      failures: z.number().int().min(0),
    })
    .nullable(),
});
export type TrunkStatus = z.infer<typeof TrunkStatus>;

export const ALARM_KINDS = ['device_busy', 'node_down', 'mrgl_exhausted', 'sip_lockout'] as const;
export const AlarmKind = z.enum(ALARM_KINDS);
export type AlarmKind = z.infer<typeof AlarmKind>;

/** An alarm a node raised, as the console shows it until acknowledged (node/alarms.ts). */
export const Alarm = z.strictObject({
  /** the condition: one key for the same condition whichever node sees it (e.g. node_down:cm3) */
  key: z.string().max(200),
  kind: AlarmKind,
  /** the node that raised it */
  node: z.string().max(64),
  text: z.string().max(500),
  raised_at: z.number(),
  last_at: z.number(),
  /** times it began (came back after it went) since start */
  count: z.number().int().min(0),
  /** whether its condition stands now */
  active: z.boolean(),
  acked_by: z.string().max(128).nullable(),
  acked_at: z.number().nullable(),
});
export type Alarm = z.infer<typeof Alarm>;

export const NodeStatusReply = z.strictObject({
  node: z.string(),
  boot: z.string(),
  /** the version of the configuration the node runs */
  config_version: z.string().optional(),
  devices: z.array(DeviceStatus),
  calls: z.array(CallView).optional(),
  media: z.array(z.strictObject({ device: z.string(), allocation: z.string(), legs: z.array(LegQuality) })).optional(),
  events: z.array(ClusterEvent).max(500).optional(),
  /** detail: the trunks this node carries */
  trunks: z.array(TrunkStatus).max(1000).optional(),
  /** detail: the alarms this node raised and nobody acknowledged yet (or that still stand) */
  alarms: z.array(Alarm).max(500).optional(),
  /** `history`: each device's active count over the last hour ([ms epoch, active] pairs); with `history_day`, the
   * last day, each minute's highest count ([minute's start, peak]) */
  history: z.record(z.string(), z.array(z.tuple([z.number(), z.number()])).max(1500)).optional(),
});
export type NodeStatusReply = z.infer<typeof NodeStatusReply>;

// ---- published events ----

export const RegistryEntry = z.strictObject({
  name: z.string().min(1).max(64),
  /** conference: a meet-me room (name conf-<number>) and the bridge device process it runs on */
  kind: z.enum(['phone', 'media_resource', 'conference']),
  type: MediaResourceType.optional(),
  pid: PidSchema,
  node: NodeName,
  boot: BootId,
  /** phones: the codecs learnt from the phone's SDP (what it offered last) */
  codecs: z.array(Codec).max(8).optional(),
  /** phones: where the phone registered from, while registered */
  registration: z
    .strictObject({
      contact: z.string().min(1).max(512),
      transport: z.enum(['UDP', 'TCP', 'TLS']),
      address: z.string().min(1).max(64),
      port: z.number().int().min(1).max(65535),
      expires_at: z.number(),
      /** when this binding (this contact) began: refreshes keep it */
      since: z.number().optional(),
      /** the phone's User-Agent, as it said (printable, cut to 128) */
      user_agent: z.string().max(128).optional(),
    })
    .optional(),
});
export type RegistryEntry = z.infer<typeof RegistryEntry>;

/**
 * The mapping table's value for one node's devices (KV mode): the PIDs of
 * all its devices under its boot, in one entry the node alone writes. (A
 * key per device made a node's start cost a write per device: 100,000
 * writes for 100 nodes of 1,000 devices.)
 */
export const MAX_DEVICES_PER_NODE = 10_000;
export const DeviceList = z.strictObject({
  node: NodeName,
  boot: BootId,
  devices: z
    .array(z.strictObject({ name: z.string().min(1).max(64), type: MediaResourceType.optional(), pid: PidSchema }))
    .max(MAX_DEVICES_PER_NODE),
});
export type DeviceList = z.infer<typeof DeviceList>;

export const RegistryEvent = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('register'), entry: RegistryEntry }),
  z.strictObject({ op: z.literal('unregister'), name: z.string(), pid: PidSchema }),
  /** a node joined and wants everyone to announce their registrations */
  z.strictObject({ op: z.literal('hello'), node: NodeName }),
]);
export type RegistryEvent = z.infer<typeof RegistryEvent>;

/**
 * A node's announcement of itself (subject `heartbeat`): sent when it starts,
 * when it hears it is suspected, when it suspects a peer and when it stops;
 * not periodically (liveness is probed, see liveness.ts).
 */
export const Heartbeat = z.strictObject({
  node: NodeName,
  boot: BootId,
  ts: z.number(),
  admin: z.string().optional(),
  sip: z.string().optional(),
  /** graceful shutdown: mark down at once instead of waiting */
  leaving: z.boolean().optional(),
  /** peers this node's probes found silent: every receiver probes them for itself */
  suspects: z
    .array(z.strictObject({ node: NodeName, boot: BootId }))
    .max(32)
    .optional(),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

/** A liveness probe: who asks, so that being probed is also hearing from the prober. */
export const PingRequest = z.strictObject({ node: NodeName, boot: BootId });
export type PingRequest = z.infer<typeof PingRequest>;

/** A liveness probe's answer: the incarnation that serves the node's ping subject. */
export const PingReply = z.strictObject({ node: NodeName, boot: BootId });
export type PingReply = z.infer<typeof PingReply>;

export const LoadReport = z.strictObject({
  node: NodeName,
  loads: z.array(
    z.strictObject({
      name: z.string(),
      active: z.number().int().min(0),
      capacity: z.number().int().min(0),
      /** per device, grows with every change: a late report never overwrites a newer figure */
      version: z.number().int().min(0),
    }),
  ),
});
export type LoadReport = z.infer<typeof LoadReport>;

// ---- helpers ----

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Decodes bytes and validates them against a schema; never throws. */
export function parseMessage<S extends z.ZodType>(schema: S, data: Uint8Array): Parsed<z.output<S>> {
  const d = decode(data);
  if (!d.ok) return d;
  const r = schema.safeParse(d.value);
  if (!r.success) {
    const first = r.error.issues[0];
    return { ok: false, error: first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'invalid' };
  }
  return { ok: true, value: r.data };
}

export { encode };
