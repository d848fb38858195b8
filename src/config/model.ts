// The validated config compiled into the lookups the MRM needs on its hot path:
// every group keeps its devices indexed by type, so a walk never touches a
// device of the wrong type (a 10,000-device MRGL costs what its matching
// devices cost).
import { createHash } from 'node:crypto';
import { compileRoutePattern, matchesDialPattern, type CompiledPattern } from './dialPattern.ts';
import type { Codec, MediaResourceType, PromptName, SelectionPolicy, SrtpPolicy, TandemConfig } from './schema.ts';
import { splitHostPort } from './hostPort.ts';

export const DEFAULT_GROUP = '(default)';

export interface ResourceSpec {
  name: string;
  type: MediaResourceType;
  node: string;
  /** as configured; 'auto' is resolved by the device's node (capacityOf) */
  capacity: number | 'auto';
  location: string | undefined;
  codecs: readonly Codec[];
  audioSources: ReadonlyMap<number, string>;
  /** annunciator: WAV file per prompt */
  prompts: ReadonlyMap<PromptName, string>;
  dtmf: readonly ('rfc4733' | 'sip_info')[];
  /** it terminates SRTP */
  srtp: boolean;
}

export interface GroupSpec {
  name: string;
  location: string | undefined;
  userClass: string | undefined;
  policy: SelectionPolicy;
  devices: readonly string[];
  /** devices of the group per type, in listed order */
  byType: ReadonlyMap<MediaResourceType, readonly string[]>;
}

export interface PhoneSpec {
  number: string;
  /** its own node (the primary of its Call Manager Group) */
  node: string;
  /** the nodes that may control it, in order: its own node, then its (or its pool's) call_managers */
  callManagers: readonly string[];
  password: string;
  devicePool: string;
  /** the phone's own MRGL, which replaces the pool's */
  ownMrgl: string | undefined;
  poolMrgl: string | undefined;
  location: string | undefined;
  userClass: string;
  codecs: readonly Codec[];
  /** codecs came from the config (else they are the default, and what the phone's SDP shows wins) */
  codecsConfigured: boolean;
  dtmf: readonly ('rfc4733' | 'sip_info')[];
  mtpRequired: boolean;
  /** encrypted media (the phone's own policy, else its pool's, else optional) */
  srtp: SrtpPolicy;
  /** user hold: the audio source a party this phone holds hears (the phone's own, else its pool's) */
  mohAudioSource: number | undefined;
  /** network hold: the audio source a party this phone transfers hears while it waits (else the user hold source) */
  networkHoldAudioSource: number | undefined;
  /** calls at once (held ones included), and the count at which incoming calls are busy */
  maxCalls: number;
  busyTrigger: number;
  /** route pattern partitions it may dial (its calling search space) */
  partitions: ReadonlySet<string>;
}

/**
 * A SIP trunk. Call control treats it as a party like a phone (its device
 * pool's MRGL, codecs, DTMF, SRTP policy, lines), one whose address is
 * configured instead of registered; `number` is the trunk's name.
 */
export interface TrunkSpec extends PhoneSpec {
  /** the nodes that carry it, in order */
  nodes: readonly string[];
  /** the far end's SIP servers as configured, in the order tried: a host (address or DNS name) and its port, or a name alone (SRV); the calls layer looks them up (TrunkPeers) */
  peers: ReadonlyArray<{ host: string; port: number | undefined }>;
  transport: 'UDP' | 'TCP' | 'TLS';
  /** PEM file (as configured: relative to the config's directory) of the CAs the far end's TLS certificate must chain to (undefined: the system's) */
  tlsCa: string | undefined;
  /** called number (DID) -> phone */
  inbound: ReadonlyMap<string, string>;
  /** how long a peer may stay silent after our INVITE (or OPTIONS) before the next is tried */
  setupTimeoutMs: number;
  /** OPTIONS keep-alive interval (0: none) */
  optionsPingS: number;
  /** Digest credentials for the far end's challenges (secret: never logged) */
  auth: { user: string; password: string } | undefined;
  /** outbound registration at the first peer */
  register: { expiresS: number; domain: string } | undefined;
}

/** A route pattern of the dial plan, compiled. */
export interface RoutePattern extends CompiledPattern {
  /** undefined: open to every phone */
  partition: string | undefined;
  /** trunk names, tried in order */
  route: readonly string[];
  discardPredot: boolean;
  prefix: string;
}

/** Where the MRGL in force comes from (highest precedence first). */
export const MRGL_SOURCES = ['request', 'registration', 'phone', 'device_pool', 'none'] as const;
export type MrglSource = (typeof MRGL_SOURCES)[number];

export interface ResolvedMrgl {
  mrgl: string | undefined;
  source: MrglSource;
}

export interface NodeSpec {
  name: string;
  sip: string;
  /** SIP over TLS address, when the node has one */
  sipTls: string | undefined;
  admin: string;
  /** the NATS servers this node connects to (nodes.<n>.bus, else cluster.bus) */
  bus: string;
  /** workers: media worker threads (0: in the node's thread; 'auto': one per core but one) */
  rtp:
    | { address: string; portMin: number; portMax: number; latch: 'sdp' | 'first_source'; workers: number | 'auto' }
    | undefined;
}

/** What a phone and a trunk take alike from their own entry and their device pool. */
function partyOf(
  x: {
    device_pool: string;
    mrgl?: string | undefined;
    codecs?: Codec[] | undefined;
    dtmf?: Array<'rfc4733' | 'sip_info'> | undefined;
    mtp_required: boolean;
  },
  pool: TandemConfig['device_pools'][string] | undefined,
) {
  return {
    devicePool: x.device_pool,
    ownMrgl: x.mrgl,
    poolMrgl: pool?.mrgl,
    location: pool?.location,
    userClass: pool?.user_class ?? 'standard',
    codecs: x.codecs ?? (['PCMU', 'PCMA'] as Codec[]),
    dtmf: x.dtmf ?? (['rfc4733'] as const),
    mtpRequired: x.mtp_required,
  };
}

export class ClusterModel {
  readonly nodes = new Map<string, NodeSpec>();
  readonly resources = new Map<string, ResourceSpec>();
  readonly groups = new Map<string, GroupSpec>();
  readonly mrgls = new Map<string, readonly string[]>();
  readonly phones = new Map<string, PhoneSpec>();
  readonly trunks = new Map<string, TrunkSpec>();
  /** trunks by a peer's "address:port": the SIP door asks for every datagram of an unknown source */
  /** the dial plan's route patterns, in config order */
  get routePatterns(): readonly RoutePattern[] {
    return this._routePatterns;
  }
  private _routePatterns: RoutePattern[] = [];
  /** devices that belong to no group: searched after the MRGL is exhausted */
  get defaultGroup(): GroupSpec {
    return this._defaultGroup;
  }
  private _defaultGroup: GroupSpec;

  /** where relative file names in the config (MOH audio sources) are found */
  baseDir = process.cwd();
  /** the text it was read from (a file, or an apply's body), when there was one: kept as the operator wrote it */
  sourceText: string | undefined;
  /** the file it was read from, when it was (a node keeps its state in .tandem/ beside it) */
  sourceFile: string | undefined;

  /** the configuration's version: a digest of its content (the same on every node running it) */
  get version(): string {
    return this._version;
  }
  private _version: string;

  get config(): TandemConfig {
    return this._config;
  }
  private _config: TandemConfig;

  /**
   * Takes over another (validated) model's content in place: everything that
   * holds this model sees the new configuration at once (tandem apply).
   */
  /** A model of its own with the same configuration (each node of one process applies changes to its own). */
  copy(): ClusterModel {
    const m = new ClusterModel(this._config);
    m.baseDir = this.baseDir;
    m.sourceText = this.sourceText;
    m.sourceFile = this.sourceFile;
    return m;
  }

  adopt(next: ClusterModel): void {
    for (const k of ['nodes', 'resources', 'groups', 'mrgls', 'phones', 'trunks'] as const) {
      const mine = this[k] as Map<string, unknown>;
      mine.clear();
      for (const [key, v] of next[k]) mine.set(key, v);
    }
    this._defaultGroup = next._defaultGroup;
    this._routePatterns = next._routePatterns;
    this._config = next._config;
    this._version = next._version;
    this.sourceText = next.sourceText;
    this.mrglNodes.clear();
  }

  constructor(config: TandemConfig) {
    this._config = config;
    this._version = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
    for (const [name, n] of Object.entries(config.nodes)) {
      let rtp: NodeSpec['rtp'];
      if (n.rtp) {
        const [lo, hi] = n.rtp.ports.split('-').map(Number) as [number, number];
        rtp = { address: n.rtp.address, portMin: lo, portMax: hi, latch: n.rtp.latch, workers: n.rtp.workers };
      }
      this.nodes.set(name, {
        name,
        sip: n.sip,
        sipTls: n.sip_tls,
        admin: n.admin,
        bus: n.bus ?? config.cluster.bus,
        rtp,
      });
    }
    for (const [name, r] of Object.entries(config.media_resources)) {
      this.resources.set(name, {
        name,
        type: r.type,
        node: r.node,
        capacity: r.capacity,
        location: r.location,
        codecs: r.codecs ?? [],
        audioSources: new Map(Object.entries(r.audio_sources ?? {}).map(([k, v]) => [Number(k), v])),
        prompts: new Map(Object.entries(r.prompts ?? {}) as Array<[PromptName, string]>),
        dtmf: r.dtmf ?? [],
        srtp: r.srtp,
      });
    }
    const grouped = new Set<string>();
    for (const [name, g] of Object.entries(config.media_resource_groups)) {
      g.devices.forEach((d) => grouped.add(d));
      this.groups.set(name, this.group(name, g.devices, g.policy, g.location, g.user_class));
    }
    const ungrouped = [...this.resources.keys()].filter((d) => !grouped.has(d));
    this._defaultGroup = this.group(DEFAULT_GROUP, ungrouped, 'ordered', undefined, undefined);
    for (const [name, list] of Object.entries(config.media_resource_group_lists)) this.mrgls.set(name, list);
    for (const [number, p] of Object.entries(config.phones)) {
      const pool = config.device_pools[p.device_pool];
      this.phones.set(number, {
        number,
        node: p.node,
        callManagers: [p.node, ...(p.call_managers ?? pool?.call_managers ?? []).filter((n) => n !== p.node)],
        password: p.password,
        ...partyOf(p, pool),
        codecsConfigured: p.codecs !== undefined,
        srtp: p.srtp ?? pool?.srtp ?? 'optional',
        mohAudioSource: p.moh_audio_source ?? pool?.moh_audio_source,
        networkHoldAudioSource:
          p.network_hold_audio_source ??
          pool?.network_hold_audio_source ??
          p.moh_audio_source ??
          pool?.moh_audio_source,
        maxCalls: p.max_calls,
        busyTrigger: Math.min(p.busy_trigger, p.max_calls),
        partitions: new Set(p.partitions ?? pool?.partitions ?? []),
      });
    }
    for (const [name, t] of Object.entries(config.trunks)) {
      const pool = config.device_pools[t.device_pool];
      this.trunks.set(name, {
        number: name,
        node: t.nodes[0]!,
        callManagers: t.nodes,
        nodes: t.nodes,
        peers: t.peers.map((hp) => (hp.includes(':') ? splitHostPort(hp) : { host: hp, port: undefined })),
        transport: t.transport === 'udp' ? 'UDP' : t.transport === 'tcp' ? 'TCP' : 'TLS',
        tlsCa: t.tls_ca,
        inbound: new Map(Object.entries(t.inbound)),
        setupTimeoutMs: t.setup_timeout_ms,
        optionsPingS: t.options_ping_s,
        auth: t.auth,
        register: t.register
          ? { expiresS: t.register.expires_s, domain: t.register.domain ?? t.peers[0]!.split(':')[0]! }
          : undefined,
        password: '',
        ...partyOf(t, pool),
        codecsConfigured: true,
        srtp: t.srtp,
        mohAudioSource: pool?.moh_audio_source,
        networkHoldAudioSource: pool?.network_hold_audio_source ?? pool?.moh_audio_source,
        maxCalls: t.max_calls,
        busyTrigger: t.max_calls,
        partitions: new Set(),
      });
    }
    this._routePatterns = config.dial_plan.route_patterns.map((r) => ({
      ...compileRoutePattern(r.pattern),
      partition: r.partition,
      route: r.route,
      discardPredot: r.discard === 'predot',
      prefix: r.prefix ?? '',
    }));
  }

  /** The party a half of a call stands for: a phone by its number, or a trunk by its name. */
  party(name: string): PhoneSpec | undefined {
    return this.phones.get(name) ?? this.trunks.get(name);
  }

  /** The trunks `node` carries. */
  trunksOn(node: string): TrunkSpec[] {
    return [...this.trunks.values()].filter((t) => t.nodes.includes(node));
  }

  /** Whether a dialled number reaches a meet-me conference (sip.conference_numbers). */
  isConferenceNumber(number: string): boolean {
    return this.config.sip.conference_numbers.some((p) => matchesDialPattern(p, number));
  }

  /**
   * The MRGL precedence rule, the only place it is written: an MRGL handed
   * over with the request (API field, INVITE header) > one the phone handed
   * over when it registered (REGISTER header) > the phone's own > its device
   * pool's. Names given must already be known MRGLs (callers check and say
   * what they do with unknown ones).
   */
  resolveMrgl(
    phone: PhoneSpec,
    given: { request?: string | undefined; registration?: string | undefined } = {},
  ): ResolvedMrgl {
    if (given.request !== undefined) return { mrgl: given.request, source: 'request' };
    if (given.registration !== undefined) return { mrgl: given.registration, source: 'registration' };
    if (phone.ownMrgl !== undefined) return { mrgl: phone.ownMrgl, source: 'phone' };
    if (phone.poolMrgl !== undefined) return { mrgl: phone.poolMrgl, source: 'device_pool' };
    return { mrgl: undefined, source: 'none' };
  }

  /**
   * The nodes whose devices `node` may be asked to allocate on for the
   * parties it may control: the nodes of the devices their MRGLs name (their
   * own or their pool's) and of the default group, and `node` itself. (An
   * MRGL handed over in a SIP header may name others; the mapping table
   * watches those when first asked for.)
   */
  deviceNodesFor(node: string): Set<string> {
    const nodes = new Set<string>([node]);
    const mrgls = new Set<string | undefined>([undefined]);
    for (const party of [...this.phonesServedBy(node), ...this.trunksOn(node)]) mrgls.add(this.resolveMrgl(party).mrgl);
    for (const l of mrgls) for (const n of this.deviceNodesOfMrgl(l)) nodes.add(n);
    return nodes;
  }

  /** The nodes of the devices a walk of this MRGL may reach: its groups' and the default group's. */
  deviceNodesOfMrgl(mrgl: string | undefined): ReadonlySet<string> {
    const known = this.mrglNodes.get(mrgl);
    if (known) return known;
    const nodes = new Set<string>();
    const groups = [
      ...(mrgl !== undefined ? (this.mrgls.get(mrgl) ?? []) : []).map((g) => this.groups.get(g)),
      this.defaultGroup,
    ];
    for (const g of groups) {
      for (const d of g?.devices ?? []) {
        const owner = this.resources.get(d)?.node;
        if (owner !== undefined) nodes.add(owner);
      }
    }
    // (asked on every allocation: kept until the next configuration)
    if (mrgl === undefined || this.mrgls.has(mrgl)) this.mrglNodes.set(mrgl, nodes);
    return nodes;
  }
  private readonly mrglNodes = new Map<string | undefined, ReadonlySet<string>>();

  resourcesOn(node: string): ResourceSpec[] {
    return [...this.resources.values()].filter((r) => r.node === node);
  }

  phonesOn(node: string): PhoneSpec[] {
    return [...this.phones.values()].filter((p) => p.node === node);
  }

  /** The phones `node` may control: its own, and those whose Call Manager Group lists it. */
  phonesServedBy(node: string): PhoneSpec[] {
    return [...this.phones.values()].filter((p) => p.callManagers.includes(node));
  }

  private group(
    name: string,
    devices: readonly string[],
    policy: SelectionPolicy,
    location: string | undefined,
    userClass: string | undefined,
  ): GroupSpec {
    const byType = new Map<MediaResourceType, string[]>();
    for (const d of devices) {
      const r = this.resources.get(d);
      if (!r) continue;
      let list = byType.get(r.type);
      if (!list) byType.set(r.type, (list = []));
      list.push(d);
    }
    return { name, location, userClass, policy, devices, byType };
  }
}
