// The YAML config as the operator writes it. Shape checks live here; checks that
// relate one section to another (unknown group, wrong location...) live in
// crossCheck.ts so every problem is reported with its path in one pass.
import { z } from 'zod';
import { compileRoutePattern } from './dialPattern.ts';
import { splitHostPort } from './hostPort.ts';
import { errorMessage } from '../errors.ts';

export const MEDIA_RESOURCE_TYPES = ['conference_bridge', 'transcoder', 'mtp', 'moh', 'annunciator'] as const;
export const MediaResourceType = z.enum(MEDIA_RESOURCE_TYPES);
export type MediaResourceType = z.infer<typeof MediaResourceType>;

export const CODECS = ['PCMU', 'PCMA', 'G722', 'L16', 'OPUS'] as const;
export const Codec = z.enum(CODECS);
export type Codec = z.infer<typeof Codec>;

// Names travel inside bus subjects and PIDs, so keep them to a safe alphabet.
const Name = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9_-]{0,63}$/,
    'must start with a letter and hold only letters, digits, "_" or "-" (max 64)',
  );
const DirectoryNumber = z.string().regex(/^[0-9]{2,15}$/, 'a directory number is 2 to 15 digits');

const HostPort = z
  .string()
  .regex(/^[^:\s]+:[0-9]{1,5}$/, 'expected host:port')
  .refine((s) => {
    const { port } = splitHostPort(s);
    return port > 0 && port < 65536;
  }, 'port must be 1-65535');

/** A trunk's peer: host:port, or a DNS name alone (located by SRV). */
const TrunkPeer = z
  .string()
  .regex(/^[^:\s]+(:[0-9]{1,5})?$/, 'expected host:port, or a DNS name alone (SRV)')
  .refine((s) => {
    if (!s.includes(':')) return !/^[0-9.]+$/.test(s) || /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(s);
    const { port } = splitHostPort(s);
    return port > 0 && port < 65536;
  }, 'port must be 1-65535');

const PortRange = z
  .string()
  .regex(/^[0-9]{1,5}-[0-9]{1,5}$/, 'expected LOW-HIGH, e.g. 20000-20999')
  .refine((s) => {
    const [lo, hi] = s.split('-').map(Number) as [number, number];
    return lo >= 1024 && hi <= 65535 && lo < hi;
  }, 'range must lie in 1024-65535 with LOW < HIGH');

export const NodeConfig = z.strictObject({
  sip: HostPort.describe('SIP listen address of this call manager'),
  sip_tls: HostPort.optional().describe(
    'SIP over TLS listen address (transport=tls); certificate from sip.tls, else a self-signed pair made on first start',
  ),
  admin: HostPort.describe('admin HTTP API address'),
  bus: z
    .string()
    .regex(/^nats:\/\/.+$/, 'expected nats://host:port[,nats://...]')
    .optional()
    .describe("this node's NATS servers, tried first (e.g. the server of its own site); default cluster.bus"),
  rtp: z
    .strictObject({
      address: z.string().min(1).describe('the address its devices send and receive RTP on'),
      ports: PortRange.describe(
        'LOW-HIGH: the UDP ports its devices use (RTP on even ports, RTCP on the next); with workers, shared out evenly',
      ),
      latch: z
        .enum(['sdp', 'first_source'])
        .default('sdp')
        .describe(
          'sdp: a leg takes packets only from the address and port in the SDP; first_source: from the first source heard (phones behind NAT), then only from it',
        ),
      workers: z
        .union([z.number().int().min(0).max(64), z.literal('auto')])
        .default(0)
        .describe(
          "media on worker threads, each with its own clock and share of the ports (0: in the node's own thread; auto: one per core but one)",
        ),
    })
    .optional()
    .describe('RTP address and port range for media resource devices on this node'),
});

export const SelectionPolicy = z.enum(['ordered', 'least_used']);
export type SelectionPolicy = z.infer<typeof SelectionPolicy>;

/** The prompts call control plays, when an annunciator has them. */
export const PROMPTS = ['no_resource', 'unknown_number', 'unavailable', 'conference_entry', 'not_allowed'] as const;
export const PromptName = z.enum(PROMPTS, { error: `prompts are ${PROMPTS.join(', ')}` });
export type PromptName = z.infer<typeof PromptName>;

export const MediaResourceConfig = z.strictObject({
  type: MediaResourceType.describe(`the kind of device: ${MEDIA_RESOURCE_TYPES.join(', ')}`),
  node: Name.describe('the call manager that controls this device'),
  capacity: z
    .union([z.number().int().min(1).max(100_000), z.literal('auto')], {
      error: 'expected a whole number of units (1-100000) or auto',
    })
    .describe(
      "units it carries; auto: its kind's measured real-time figure per core (BENCHMARKS.md) times the media threads of its node",
    ),
  location: Name.optional().describe(
    'where the device is; a group with a location may hold only devices located there',
  ),
  codecs: z.array(Codec).min(1).optional().describe('transcoder: codecs it can convert between'),
  audio_sources: z
    .record(z.string().regex(/^[0-9]{1,3}$/, 'audio source ids are numbers 0-999'), z.string().min(1))
    .optional()
    .describe('moh: numbered audio source files'),
  dtmf: z
    .array(z.enum(['rfc4733', 'sip_info']))
    .min(1)
    .optional()
    .describe('mtp: DTMF methods it converts between'),
  prompts: z
    .partialRecord(PromptName, z.string().min(1))
    .optional()
    .describe(`annunciator: a WAV file per prompt (${PROMPTS.join(', ')})`),
  srtp: z
    .boolean()
    .default(true)
    .describe(
      'whether the device terminates SRTP (false: a call that needs encrypted media skips it, `no_capability` in explain)',
    ),
});
export type MediaResourceConfig = z.infer<typeof MediaResourceConfig>;

export const MediaResourceGroupConfig = z.strictObject({
  devices: z
    .array(Name)
    .min(1)
    .describe('the devices of the group in order (any types: a walk looks only at the type asked for)'),
  location: Name.optional().describe('every device of the group must be located here'),
  user_class: Name.optional().describe('only phones of this user class use the group'),
  policy: SelectionPolicy.default('ordered').describe(
    'ordered: the first free device in listed order; least_used: the fewest active allocations for its capacity (listed order breaks ties)',
  ),
});

const AudioSourceId = z.number().int().min(0).max(999);

/**
 * Encrypted media (SRTP with SDES keys) for a phone: `required` (its calls
 * are encrypted end to end or refused: every leg, every device), `optional`
 * (SRTP when it offers it, and towards it when the far end does), `off` (it
 * does not do SRTP: an MTP converts when an SRTP phone calls it).
 */
export const SrtpPolicy = z.enum(['required', 'optional', 'off']);
export type SrtpPolicy = z.infer<typeof SrtpPolicy>;

const CallManagerGroup = z
  .array(Name)
  .min(1)
  .max(8)
  .refine((xs) => new Set(xs).size === xs.length, 'a call manager appears twice');

/** Route pattern partitions a phone may dial (CUCM's calling search space); patterns in no partition are open to every phone. */
const Partitions = z
  .array(Name)
  .max(32)
  .describe(
    'route pattern partitions its phones may dial (calling search space); route patterns without a partition are open to every phone',
  );

export const DevicePoolConfig = z.strictObject({
  mrgl: Name.optional().describe("the media resource group list its phones' resources come from"),
  partitions: Partitions.optional(),
  call_managers: CallManagerGroup.optional().describe(
    'Call Manager Group: the nodes its phones fail over to, in order, after their own node (a phone registers at the first of them that is up; its own node is always first)',
  ),
  moh_audio_source: AudioSourceId.optional().describe(
    "user hold: the audio source a party held by this pool's phones hears (CUCM's User Hold MOH Audio Source)",
  ),
  network_hold_audio_source: AudioSourceId.optional().describe(
    "network hold: the audio source a party transferred by this pool's phones hears while it waits (CUCM's Network Hold MOH Audio Source; default: the user hold source)",
  ),
  location: Name.optional().describe("its phones' location"),
  user_class: Name.default('standard').describe(
    "its phones' class of user (groups with a user_class serve only that class)",
  ),
  srtp: SrtpPolicy.optional().describe(
    "encrypted media for the pool's phones: required | optional | off (default optional)",
  ),
});

export const PhoneConfig = z.strictObject({
  node: Name.describe('the call manager that controls the phone (first of its Call Manager Group)'),
  call_managers: CallManagerGroup.optional().describe(
    "replaces the device pool's call_managers (the phone's own node stays first)",
  ),
  password: z.string().min(1).describe('its Digest password (never logged or shown)'),
  device_pool: Name.describe('its device pool: MRGL, location, class, hold sources, SRTP policy, Call Manager Group'),
  mrgl: Name.optional().describe("replaces the device pool's MRGL"),
  partitions: Partitions.optional().describe("route pattern partitions the phone may dial; replaces the pool's"),
  codecs: z.array(Codec).min(1).optional().describe('codecs the phone can use (default PCMU, PCMA)'),
  dtmf: z
    .array(z.enum(['rfc4733', 'sip_info']))
    .min(1)
    .optional()
    .describe('DTMF methods the phone understands (default rfc4733)'),
  mtp_required: z
    .boolean()
    .default(false)
    .describe('every call of the phone goes through an MTP of its MRGL (its SDP points at the MTP)'),
  srtp: SrtpPolicy.optional().describe(
    "encrypted media: required (encrypted end to end or refused) | optional (when offered) | off (RTP only); replaces the pool's",
  ),
  moh_audio_source: AudioSourceId.optional().describe(
    "user hold: the audio source a party held by this phone hears; replaces the pool's",
  ),
  network_hold_audio_source: AudioSourceId.optional().describe(
    "network hold: the audio source a party this phone transfers hears while it waits; replaces the pool's",
  ),
  max_calls: z
    .number()
    .int()
    .min(1)
    .max(8)
    .default(4)
    .describe(
      "calls the phone can be in at once, held ones included (a consultation call for a transfer or a conference needs 2; CUCM's Maximum Number of Calls)",
    ),
  busy_trigger: z
    .number()
    .int()
    .min(1)
    .max(8)
    .default(1)
    .describe("calls at which a new incoming call gets 486 Busy Here (1: no call waiting; CUCM's Busy Trigger)"),
});

/** A number outside the cluster as a trunk carries it: digits, * and #, perhaps E.164's leading +. */
export const OutsideNumber = z.string().regex(/^\+?[0-9*#]{1,32}$/, 'digits, * or #, perhaps a leading + (at most 32)');

export const TrunkConfig = z.strictObject({
  nodes: CallManagerGroup.describe(
    "the nodes that carry the trunk, in order: an outbound call leaves through the caller's own node when it is one of them, else the first of them that is up",
  ),
  peers: z
    .array(TrunkPeer)
    .min(1)
    .max(8)
    .refine((xs) => new Set(xs).size === xs.length, 'a peer appears twice')
    .describe(
      "the far end's SIP servers, tried in order: host:port (an address, or a name whose addresses are each tried) or a name alone (its DNS SRV records, RFC 3263); calls go to the first and, when it does not answer or answers 5xx, to the next; calls are taken only from their addresses",
    ),
  transport: z
    .enum(['udp', 'tcp', 'tls'])
    .default('udp')
    .describe(
      "how to reach the far end: udp, tcp, or tls (its certificate checked against tls_ca, or the system's CAs, for the peer's name)",
    ),
  tls_ca: z
    .string()
    .min(1)
    .optional()
    .describe(
      "PEM file (relative to the config) of the CAs that sign the far end's TLS certificate; default: the system's CAs",
    ),
  device_pool: Name.describe(
    "the trunk's device pool: its MRGL gives the trunk's calls their MTPs, transcoders and music on hold",
  ),
  mrgl: Name.optional().describe("replaces the device pool's MRGL"),
  codecs: z
    .array(Codec)
    .min(1)
    .optional()
    .describe('codecs the far end takes (default PCMU, PCMA): a phone without one of them gets a transcoder'),
  dtmf: z
    .array(z.enum(['rfc4733', 'sip_info']))
    .min(1)
    .optional()
    .describe('DTMF methods the far end understands (default rfc4733)'),
  mtp_required: z
    .boolean()
    .default(false)
    .describe(
      "every call through the trunk goes through an MTP of the trunk's MRGL (one fixed media address towards the carrier)",
    ),
  srtp: SrtpPolicy.default('off').describe(
    'encrypted media towards the far end (default off: carriers mostly send RTP; an SRTP phone gets an MTP that converts)',
  ),
  max_calls: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(100)
    .describe('calls through the trunk at once, per node; more get 503'),
  setup_timeout_ms: z
    .number()
    .int()
    .min(200)
    .max(32_000)
    .default(3000)
    .describe(
      'a peer that answers an INVITE with nothing at all (not even 100 Trying) within this long is skipped for the next',
    ),
  options_ping_s: z
    .number()
    .int()
    .min(0)
    .max(3600)
    .default(30)
    .describe(
      'OPTIONS to each peer this often (0: never); a peer that does not answer within setup_timeout_ms, or answers 503, is skipped by calls until it answers again',
    ),
  auth: z
    .strictObject({
      user: z
        .string()
        .min(1)
        .max(64)
        .regex(/^[^\s"]+$/, 'no spaces or quotes')
        .describe('the user name the far end knows us by'),
      password: z.string().min(1).max(256).describe('its password (never logged or shown)'),
    })
    .optional()
    .describe("credentials for the far end's Digest challenges (to our REGISTER and INVITEs); never logged or shown"),
  register: z
    .strictObject({
      expires_s: z
        .number()
        .int()
        .min(30)
        .max(86_400)
        .default(600)
        .describe('registration lifetime asked for; refreshed at half of what the far end grants'),
      domain: z
        .string()
        .min(1)
        .max(253)
        .optional()
        .describe("the domain of the registered address (default: the first peer's host)"),
    })
    .optional()
    .describe(
      'register each node that carries the trunk at its first peer (as many carriers want): user auth.user, contact the node',
    ),
  inbound: z
    .record(OutsideNumber, DirectoryNumber)
    .default({})
    .describe(
      "called number (DID) -> the phone it reaches; a called number that is a phone's own number reaches that phone",
    ),
});
export type TrunkConfig = z.infer<typeof TrunkConfig>;

export const RoutePatternConfig = z.strictObject({
  pattern: z
    .string()
    .superRefine((p, ctx) => {
      try {
        compileRoutePattern(p);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: errorMessage(err) });
      }
    })
    .describe(
      'what the phone dials, in CUCM notation: digits, X (any digit), [2-9], ! (one or more digits, last), . (what comes before it can be discarded)',
    ),
  partition: Name.optional().describe('only phones whose partitions include it may dial it (default: every phone)'),
  route: z
    .array(Name)
    .min(1)
    .max(8)
    .describe(
      'trunks tried in order: the next when one is down, unreachable, or answers 408 or 5xx; a final answer from the callee (486, 404, 603...) ends the call',
    ),
  discard: z
    .enum(['predot'])
    .optional()
    .describe('predot: the digits before the "." are not sent (9.! sends what follows the 9)'),
  prefix: z
    .string()
    .regex(/^\+?[0-9*#]{0,16}$/, 'digits, perhaps a leading +')
    .optional()
    .describe('put in front of the number sent (after discarding), e.g. +1'),
});
export type RoutePatternConfig = z.infer<typeof RoutePatternConfig>;

const DialPattern = z.string().regex(/^[0-9xX]{1,15}$/, 'digits, with x for any digit (e.g. 8xxx)');

export const SipConfig = z.strictObject({
  realm: z.string().min(1).optional().describe('Digest realm (default: the cluster name)'),
  dns_servers: z
    .array(HostPort)
    .max(4)
    .optional()
    .describe("DNS servers (host:port) that trunks' peer names are looked up at; default: the system's resolver"),
  dns_refresh_s: z
    .number()
    .int()
    .min(5)
    .max(86_400)
    .default(300)
    .describe("trunks' peer names are looked up again this often (a name that fails keeps its last addresses)"),
  tls: z
    .strictObject({
      cert: z.string().min(1).describe('certificate (PEM)'),
      key: z.string().min(1).describe('key (PEM)'),
    })
    .optional()
    .describe(
      'certificate and key (PEM files, relative to the config) for SIP over TLS on nodes with sip_tls; default: a self-signed pair per node in .tandem/ beside the config, made on first start',
    ),
  min_expires: z
    .number()
    .int()
    .min(10)
    .max(86_400)
    .default(60)
    .describe('the shortest REGISTER interval accepted (shorter: 423 Interval Too Brief)'),
  max_expires: z.number().int().min(10).max(86_400).default(3600).describe('the longest (longer: capped)'),
  ring_timeout_ms: z
    .number()
    .int()
    .min(1000)
    .max(600_000)
    .default(60_000)
    .describe('an unanswered call ends with 480 after this long'),
  authenticate_invites: z
    .boolean()
    .default(true)
    .describe("challenge every new INVITE with 407 (Digest, the phone's password), not only REGISTER"),
  max_setups_in_progress: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(256)
    .describe(
      'call setups a node works on at once (INVITE received, callee not yet being called); a new INVITE beyond them gets an immediate 503 with Retry-After, before any state is kept, so the calls admitted stay fast under overload',
    ),
  max_queue_delay_ms: z
    .number()
    .int()
    .min(10)
    .max(10_000)
    .default(100)
    .describe(
      "how long a new INVITE may wait in the node's queue (a busy node reads faster than it handles) before it is refused at once with 503 and Retry-After; the calls admitted are set up before the caller's SIP timer (T1, 500 ms) retransmits",
    ),
  conference_numbers: z
    .array(DialPattern)
    .default([])
    .describe('dial patterns (x: any digit) that reach a meet-me conference bridge instead of a phone'),
  adhoc_conference_number: z
    .string()
    .regex(/^[0-9]{2,15}$/, 'digits')
    .optional()
    .describe(
      "dialled while the phone has other calls: joins them all into one conference on a bridge of the phone's MRGL (not a phone's number)",
    ),
  auth: z
    .strictObject({
      nonce_ttl_s: z
        .number()
        .int()
        .min(5)
        .max(3600)
        .default(300)
        .describe('how long a Digest nonce is good for; a right answer to an older one gets stale=true'),
      algorithms: z
        .array(z.enum(['SHA-256', 'MD5']))
        .min(1)
        .default(['MD5'])
        .describe(
          "Digest algorithms offered, preferred first (RFC 8760: [SHA-256, MD5]); MD5 alone by default: phones on libre 1.x (Debian's baresip 1.0) cannot register when a SHA-256 challenge is present",
        ),
      max_failures: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(10)
        .describe('wrong passwords per user (per source address: 4 times this) before a lockout'),
      lockout_s: z.number().int().min(1).max(86_400).default(300).describe('how long a lockout lasts'),
    })
    .prefault({})
    .describe('Digest authentication of REGISTER and INVITE'),
  tcp: z
    .strictObject({
      max_connections_per_source: z
        .number()
        .int()
        .min(1)
        .max(10_000)
        .default(32)
        .describe('SIP TCP and TLS connections from one address at once'),
      max_connections: z
        .number()
        .int()
        .min(1)
        .max(100_000)
        .default(4096)
        .describe('SIP TCP and TLS connections at once'),
      idle_timeout_s: z
        .number()
        .int()
        .min(1)
        .max(86_400)
        .default(300)
        .describe('a connection with no complete message for this long is closed'),
      message_timeout_s: z
        .number()
        .int()
        .min(1)
        .max(600)
        .default(10)
        .describe('a message must arrive whole within this long once its first byte has'),
    })
    .prefault({})
    .describe('SIP over TCP and TLS: connection limits'),
});

const Millis = z.number().int().min(1).max(600_000);

export const ClusterConfig = z.strictObject({
  name: Name.default('tandem').describe(
    'the cluster name: prefixes bus subjects (tandem.<name>.…) and the mapping table bucket, so clusters can share a NATS server',
  ),
  bus: z
    .string()
    .regex(/^(memory|nats:\/\/.+)$/, 'expected "memory" or nats://host:port[,nats://...]')
    .default('memory')
    .describe('memory (every node in one process) or nats://host:port[,nats://…]'),
  request_timeout_ms: Millis.default(500).describe('deadline of one allocation request; then the walk moves on'),
  heartbeat_ms: Millis.default(500).describe('liveness probe period: each node probes one peer per period'),
  node_down_after_ms: Millis.default(2000).describe(
    'silence after which a node is unreachable: its devices are skipped and it is probed; it is declared down at once if the bus says its connection is gone',
  ),
  node_dead_after_ms: Millis.default(30_000).describe(
    'silence after which an unreachable node is declared down without proof (its leases reclaimed, calls with it ended); never by a node that hears no peer',
  ),
  nats: z
    .strictObject({
      user: z.string().optional().describe('NATS user (else TANDEM_NATS_USER)'),
      pass: z.string().optional().describe('NATS password (else TANDEM_NATS_PASS); never logged'),
      token: z.string().optional().describe('NATS token (else TANDEM_NATS_TOKEN); never logged'),
      kv_replicas: z
        .number()
        .int()
        .min(1)
        .max(5)
        .default(1)
        .describe('copies of the mapping table bucket: 3 on a 3-server NATS cluster survives one server'),
      tls: z
        .strictObject({
          ca: z.string().optional().describe('CA certificate (PEM) the servers are checked against'),
          cert: z.string().optional().describe('client certificate (PEM)'),
          key: z.string().optional().describe('client key (PEM)'),
        })
        .optional()
        .describe('TLS to the NATS servers'),
      keys_dir: z
        .string()
        .min(1)
        .optional()
        .describe(
          'node keys (nkeys): <node>.pub for every node, <node>.seed for the local one; default .tandem/<cluster>-keys beside the config',
        ),
    })
    .optional()
    .describe('the NATS bus: credentials, TLS, the mapping table bucket, node keys'),
});

const Sha256Hex = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'expected the SHA-256 of the token as 64 lowercase hex digits (tandem token new prints it)');

export const AdminTokenConfig = z.strictObject({
  name: Name.describe('who holds the token: shown as the owner of its allocations and in logs'),
  role: z.enum(['viewer', 'operator']).describe('viewer reads; operator also allocates and releases'),
  sha256: Sha256Hex.describe('SHA-256 of the token (the token itself is never stored)'),
});

export const AdminConfig = z.strictObject({
  tokens: z
    .array(AdminTokenConfig)
    .default([])
    .describe('bearer tokens, hashed (tandem token makes one); when empty, a token file is created on first start'),
  token_file: z
    .string()
    .min(1)
    .optional()
    .describe(
      'operator token created on first start when no tokens are configured (default .tandem/<cluster>.admin-token beside the config)',
    ),
  tls: z
    .strictObject({
      cert: z.string().min(1).describe('certificate (PEM), relative to the config'),
      key: z.string().min(1).describe('key (PEM), relative to the config'),
    })
    .optional()
    .describe('serve the admin API over HTTPS'),
  write_rate_per_min: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(120)
    .describe('writes (POST, DELETE) per client (token) per minute'),
  lease_default_s: z
    .number()
    .int()
    .min(1)
    .max(86_400)
    .default(300)
    .describe('lease of an allocation made through the API when the request names none'),
  lease_max_s: z.number().int().min(1).max(86_400).default(3600).describe('the longest lease allowed'),
  max_allocations_per_client: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(32)
    .describe('allocations one token may hold through the API at once'),
});
export type AdminConfig = z.infer<typeof AdminConfig>;

const Percent = z.number().int().min(1).max(100);
export const AlarmsConfig = z.strictObject({
  device_busy_pct: Percent.default(80).describe(
    "a device at or above this share of its capacity raises an alarm (device_busy) on its node's console until acknowledged",
  ),
  device_busy_pct_by_type: z
    .partialRecord(MediaResourceType, Percent)
    .default({})
    .describe('the same threshold per kind of device, e.g. { conference_bridge: 90 }'),
});

export const TandemConfig = z.strictObject({
  media_dir: z
    .string()
    .min(1)
    .optional()
    .describe(
      "the directory media files (MOH sources, prompts) are read from, relative to the config file's directory (default: that directory); nothing outside it is opened; restart-only",
    ),
  admin: AdminConfig.prefault({}).describe('the admin HTTP API of every node: tokens, TLS, limits'),
  alarms: AlarmsConfig.prefault({}).describe(
    "the console's alarms: devices near capacity (the thresholds here), nodes down, MRGLs exhausted, SIP lockouts; each shown until an operator acknowledges it",
  ),
  cluster: ClusterConfig.prefault({}).describe('the cluster: its name, its bus, liveness'),
  nodes: z
    .record(Name, NodeConfig)
    .refine((r) => Object.keys(r).length > 0, 'at least one node is required')
    .describe('the call managers, by name (a letter, then letters, digits, _ or -)'),
  media_resources: z
    .record(Name, MediaResourceConfig)
    .default({})
    .describe('the media resource devices, by name: each controlled by one node'),
  media_resource_groups: z
    .record(Name, MediaResourceGroupConfig)
    .default({})
    .describe('media resource groups (MRG); devices in no group form the default group, searched after the MRGL'),
  media_resource_group_lists: z
    .record(Name, z.array(Name).min(1))
    .default({})
    .describe('media resource group lists (MRGL): groups searched in order'),
  device_pools: z
    .record(Name, DevicePoolConfig)
    .default({})
    .describe('device pools: what their phones share (MRGL, location, class, hold sources, SRTP, Call Manager Group)'),
  phones: z
    .record(DirectoryNumber, PhoneConfig)
    .default({})
    .describe('the phones, by directory number (2 to 15 digits)'),
  trunks: z.record(Name, TrunkConfig).default({}).describe('SIP trunks: carriers, other PBXs, other clusters'),
  dial_plan: z
    .strictObject({
      route_patterns: z
        .array(RoutePatternConfig)
        .max(10_000)
        .default([])
        .describe(
          'route patterns: of those a dialled number matches and the phone may use, the one matching the fewest numbers routes it (CUCM: closest match)',
        ),
    })
    .prefault({})
    .describe('numbers that are not phones or conferences: which trunks they leave through'),
  sip: SipConfig.prefault({}).describe('SIP: registrar, authentication, admission control, TCP and TLS'),
  cdr: z
    .strictObject({
      dir: z
        .string()
        .min(1)
        .nullable()
        .default('.tandem/cdr')
        .describe(
          "where each node appends its call detail records (<cluster>-<node>.jsonl, owner-only), relative to the config's directory; null: kept in memory only",
        ),
      retention_days: z
        .number()
        .int()
        .min(1)
        .max(3650)
        .default(90)
        .describe("records older than this are dropped (on the node and in the cluster's JetStream archive)"),
      max_records: z
        .number()
        .int()
        .min(100)
        .max(10_000_000)
        .default(100_000)
        .describe("records each node keeps at most, on itself and in the cluster's archive (the oldest go first)"),
    })
    .prefault({})
    .describe(
      "call detail records: every half of every call, searchable from any node (GET /api/cdrs); over NATS also written to the cluster's JetStream stream tandem_<cluster>_cdrs, so a node that is down does not take its records with it",
    ),
});
export type TandemConfig = z.infer<typeof TandemConfig>;
