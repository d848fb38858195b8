// One call manager: hosts the device processes of the devices it controls,
// keeps the mapping table, watches node liveness, runs the MRM and serves
// the admin API. It talks to other call managers only through its Bus.
import type { Logger } from 'pino';
import type { ClusterModel, PhoneSpec, ResourceSpec, TrunkSpec } from '../config/model.ts';
import type { Bus, BusMessage, Subscription } from '../cluster/bus.ts';
import { BusRegistryStore } from '../cluster/busRegistryStore.ts';
import { DeviceManager } from '../cluster/deviceManager.ts';
import { Liveness } from '../cluster/liveness.ts';
import { EventLog } from './eventLog.ts';
import { Reconciler } from './reconciler.ts';
import { UsageHistory } from './usageHistory.ts';
import { changesFor, describeChanges, unappliable } from '../config/configChange.ts';
import type { ConfigProblem } from '../config/crossCheck.ts';
import { parseConfig, validateConfig } from '../config/load.ts';
import { ConfigVersions } from '../config/configVersions.ts';
import { AlarmBook } from './alarms.ts';
import { mediaDirOf, mediaFileProblems } from '../config/mediaFiles.ts';
import {
  CdrReply,
  AlarmAckReply,
  AllocationReleaseReply,
  ConfigApplyReply,
  LadderReply,
  type LadderMessage,
  type NodeControlRequestIn,
  ControlRefusal,
  DeviceStatus,
  ExplainRefusal,
  NodeControlRequest,
  NodeStatusReply,
  TraceReply,
  encode,
  parseMessage,
  CallDetailRecord,
  type CdrFilter,
  type ExplainRequest,
  type OperatorAuthority,
  type RegistryEntry,
} from '../cluster/messages.ts';
import { CdrStore, cdrMatches } from '../calls/cdrStore.ts';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { AllocationError, type AllocationRequest } from '../mrm/mediaResourceManager.ts';
import type { Trace } from '../mrm/trace.ts';
import { makePid, newBootId, parsePid } from '../cluster/pid.ts';
import { PostOffice } from '../cluster/postOffice.ts';
import { forEachLimited } from '../cluster/limited.ts';
import type { KvSigning } from '../cluster/kvRegistryStore.ts';
import type { NodeIdentity, NodeKeyring } from '../cluster/nodeKeys.ts';
import { LoopbackBus } from '../cluster/loopbackBus.ts';
import { SignedBus } from '../cluster/signedBus.ts';
import { LogLimiter } from '../log.ts';
import { EventLoopLag } from '../overload.ts';
import type { RegistryStore } from '../cluster/registryStore.ts';
import type { RecordArchive } from '../cluster/recordArchive.ts';
import { Subjects } from '../cluster/subjects.ts';
import { MediaResourceProcess } from '../devices/mediaResourceProcess.ts';
import { PhoneProcess } from '../devices/phoneProcess.ts';
import { LoadView } from '../mrm/loadView.ts';
import { MediaResourceManager } from '../mrm/mediaResourceManager.ts';
import type { AdminDeps, TrunkView } from '../admin/deps.ts';
import { ROUTE_WORK_MAX_MS } from '../admin/http.ts';
import { AdminServer } from '../admin/server.ts';
import type { Refusal } from '../admin/metrics.ts';
import { AdminTokens, OperatorActRefused, type AdminPrincipal } from '../admin/tokens.ts';
import { TrunkPeers } from '../calls/trunkPeers.ts';
import { nameLookup } from '../sip/locate.ts';
import { CallControl } from '../calls/callControl.ts';
import { Registrar } from '../calls/registrar.ts';
import { controllerOf } from '../calls/callManagerGroup.ts';
import { AuthThrottle } from '../calls/authThrottle.ts';
import { SipAuthenticator } from '../calls/sipAuthenticator.ts';
import type { Registration } from '../devices/phoneProcess.ts';
import type { Codec } from '../config/schema.ts';
import { DigestAuth } from '../sip/digest.ts';
import { SipStack } from '../sip/transactions.ts';
import { SipTransport, type SipTlsOptions } from '../sip/transport.ts';
import { sipCertificate } from '../sip/tlsCertificate.ts';
import { mediaPlaneFor, mediaThreads } from '../devices/mediaPlanes.ts';
import type { MediaPlane } from '../media/mediaPlane.ts';
import { splitHostPort } from '../config/hostPort.ts';
import type { ZodType } from 'zod';
import { SipLadder } from '../sip/ladder.ts';
import { errorMessage } from '../errors.ts';

/** mapping table writes a node keeps in flight when it writes all its entries (start, graceful stop) */
const WRITES_IN_FLIGHT = 16;

/** how often a node checks that the devices still hold its allocations */
const RECONCILE_MS = 30_000;

export interface CallManagerOptions {
  model: ClusterModel;
  node: string;
  bus: Bus;
  log: Logger;
  /** the cluster's archive of call detail records (JetStream over NATS); none on the embedded bus */
  cdrArchive?: RecordArchive;
  /** the mapping table's store; default: announcements over the bus */
  registryStore?: (ctx: {
    bus: Bus;
    subjects: Subjects;
    node: string;
    log: Logger;
    signing: KvSigning | undefined;
  }) => RegistryStore;
  /** serve the admin HTTP API on the node's configured address (default true) */
  admin?: boolean;
  /** listen on this admin port instead of the configured one (0: any free port) */
  adminPort?: number;
  /** run the SIP registrar and call control on the node's SIP address (default true) */
  sip?: boolean;
  /** admin API credentials (shared by the nodes of one process); default: from the config */
  adminTokens?: AdminTokens;
  /** this node's key and every node's public key: the bus and the mapping table are signed and checked */
  keys?: { identity: NodeIdentity; keyring: NodeKeyring } | undefined;
}

export class CallManager implements AdminDeps {
  readonly name: string;
  readonly boot = newBootId();
  readonly subjects: Subjects;
  readonly post: PostOffice;
  readonly liveness: Liveness;
  readonly devices: DeviceManager;
  readonly loads: LoadView;
  readonly mrm: MediaResourceManager;
  /** agreement with a peer after a silence (leases, allocations, calls) */
  readonly reconciler: Reconciler;
  readonly model: ClusterModel;
  readonly log: Logger;
  admin: AdminServer | undefined;
  sip:
    | {
        transport: SipTransport;
        stack: SipStack;
        registrar: Registrar;
        calls: CallControl;
        throttle: AuthThrottle;
        authenticator: SipAuthenticator;
        trunkPeers: TrunkPeers;
      }
    | undefined;
  /** how late the event loop runs: past a quarter of node_down_after_ms new SIP work is shed */
  readonly lag: EventLoopLag;
  /** the media plane of the devices this node hosts (needs nodes.<name>.rtp) */
  readonly media: MediaPlane | undefined;
  readonly phones = new Map<string, PhoneProcess>();
  /** the lines of the trunks this node carries (a process each, like a phone's, whose address is configured) */
  readonly trunkLines = new Map<string, PhoneProcess>();
  /** what the console's event log shows of this node */
  readonly events: EventLog;
  /** what this node raised for an operator to acknowledge (the console's alarms) */
  readonly alarms: AlarmBook;
  /** the configurations this node has run, with their texts (the console's history and rollback) */
  readonly configVersions: ConfigVersions;
  private tokens_: AdminTokens | undefined;
  /** the admin credentials this node knows (its API's, and the check of operators' acts other nodes forward) */
  get tokens(): AdminTokens {
    if (!this.tokens_) throw new Error('admin tokens are read at start()');
    return this.tokens_;
  }
  private readonly history: UsageHistory;
  /** the call detail records of the calls this node ran */
  readonly cdrStore: CdrStore;
  /** the SIP ladder of recent calls on this node */
  readonly sipLadder = new SipLadder();
  private readonly bus: Bus;
  /** bus messages and mapping table values refused, by reason */
  private readonly busRefused = new Map<string, number>();
  private readonly store: RegistryStore;
  private readonly own: RegistryEntry[] = [];
  private readonly resources: MediaResourceProcess[] = [];
  private controlSub: Subscription | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private retireTimer: NodeJS.Timeout | undefined;
  /** phones removed from the config while in a call: dropped when their calls end */
  private readonly retiringPhones = new Set<string>();
  private running = false;

  constructor(private readonly opts: CallManagerOptions) {
    const { model, node, bus } = opts;
    const spec = model.nodes.get(node);
    if (!spec) throw new Error(`node "${node}" is not in the config (nodes: ${[...model.nodes.keys()].join(', ')})`);
    this.name = node;
    this.model = model;
    this.log = opts.log.child({ node });
    this.events = new EventLog(node);
    this.alarms = new AlarmBook(node, (a) => {
      if (a.active) this.log.warn({ alarm: a.key, kind: a.kind, text: a.text }, 'alarm raised');
    });
    // Kept beside the config file it was started from (in memory for a config given as text, e.g. tests).
    this.configVersions = new ConfigVersions(
      model.sourceFile
        ? join(dirname(model.sourceFile), '.tandem', `${model.config.cluster.name}-${node}.config-versions.json`)
        : undefined,
      this.log.child({ component: 'config' }),
    );
    this.history = new UsageHistory(async () => (await this.localStatus()).devices);
    const cdr = this.model.config.cdr;
    this.cdrStore = new CdrStore({
      file:
        cdr.dir === null
          ? undefined
          : resolvePath(this.model.baseDir, cdr.dir, `${this.model.config.cluster.name}-${node}.jsonl`),
      maxRecords: cdr.max_records,
      retentionMs: cdr.retention_days * 86_400_000,
      log: this.log.child({ component: 'cdr' }),
    });
    const busLimiter = new LogLimiter(this.log, 30_000);
    const refused = (reason: string, subject: string, claimed: string | undefined, detail?: string) => {
      this.busRefused.set(reason, (this.busRefused.get(reason) ?? 0) + 1);
      busLimiter.warn(
        `${reason}|${claimed ?? ''}`,
        { reason, subject, claimed_node: claimed ?? null, detail },
        'bus message refused',
      );
    };
    const subjects = new Subjects(model.config.cluster.name);
    // What a node asks of itself never depends on the bus (LoopbackBus); what it asks of others is signed.
    this.bus = new LoopbackBus(
      opts.keys
        ? new SignedBus(bus, {
            identity: opts.keys.identity,
            keyring: opts.keys.keyring,
            boot: this.boot,
            targetOf: (s) => subjects.targetNode(s),
            onRefused: refused,
          })
        : bus,
    );
    if (opts.keys && opts.keys.identity.node !== node)
      throw new Error(`the key given to ${node} is ${opts.keys.identity.node}'s`);
    const signing: KvSigning | undefined = opts.keys && {
      identity: opts.keys.identity,
      keyring: opts.keys.keyring,
      onRefused: (why, key) => refused('mapping_table', key, undefined, why),
    };
    const c = model.config.cluster;
    this.subjects = subjects;
    this.lag = new EventLoopLag(Math.max(250, c.node_down_after_ms / 4));
    this.post = new PostOffice(this.bus, this.subjects, node, this.log);
    this.liveness = new Liveness(
      this.bus,
      this.subjects,
      {
        node,
        boot: this.boot,
        heartbeatMs: c.heartbeat_ms,
        downAfterMs: c.node_down_after_ms,
        deadAfterMs: c.node_dead_after_ms,
        probeTimeoutMs: c.request_timeout_ms,
        members: () => this.model.nodes.keys(),
        admin: spec.admin,
        sip: spec.sip,
      },
      this.log,
    );
    const makeStore = opts.registryStore ?? ((x) => new BusRegistryStore(x.bus, x.subjects, x.node, x.log));
    this.store = makeStore({ bus: this.bus, subjects: this.subjects, node, log: this.log, signing });
    this.devices = new DeviceManager(
      this.store,
      this.liveness,
      this.log,
      (e) => this.entryProblem(e),
      (name) => this.model.resources.get(name)?.node,
    );
    this.media = spec.rtp
      ? mediaPlaneFor(spec.rtp, mediaDirOf(model), this.log.child({ component: 'media' }), `tandem-${node}`)
      : undefined;
    if (this.media) this.media.onRoom = (device, room, open) => void this.conferenceRoom(device, room, open);
    this.loads = new LoadView(this.bus, this.subjects, node, this.log);
    this.mrm = new MediaResourceManager(
      model,
      this.devices,
      this.post,
      this.loads,
      { node, boot: this.boot, requestTimeoutMs: c.request_timeout_ms },
      this.log,
    );
    this.reconciler = new Reconciler({
      node,
      bus: this.bus,
      subjects: this.subjects,
      mrm: this.mrm,
      resources: () => this.resources,
      calls: () => this.sip?.calls,
      requestTimeoutMs: c.request_timeout_ms,
      log: this.log.child({ component: 'reconcile' }),
    });
  }

  async start(): Promise<void> {
    this.recordEvents();
    // A node starts from its file: a later version applied live and never written to the file is said aloud.
    const last = this.configVersions.list(this.model.version)[0];
    if (last && !last.running && last.by !== '(file)') {
      const msg = `starting from the file's version ${this.model.version}; version ${last.version} was applied live by ${last.by} and is not in the file (apply it again, or write it to the file)`;
      this.log.warn({ version: this.model.version, applied: last.version, by: last.by }, msg);
      this.events.record('config_behind', msg);
    }
    // The version this node starts with (its file, or what it last ran when it restarts with the same file).
    this.configVersions.record(
      this.model.version,
      this.configText(this.model),
      this.configVersions.get(this.model.version)?.by ?? '(file)',
    );
    this.post.start();
    this.loads.start();
    this.controlSub = this.bus.serve(this.subjects.nodeControl(this.name), (m) => this.control(m));
    this.liveness.on('node_down', (s) => {
      // Leases this node granted to the dead node are void; allocations it held there are lost.
      for (const p of this.resources) void p.deliver({ op: 'reclaim', node: s.node, boot: s.boot });
      this.mrm.nodeLost(s.node, `node ${s.node} down`);
      this.loads.forgetNode(this.model.resourcesOn(s.node).map((r) => r.name));
    });
    // Declared down by the others while stalled: what they reclaimed is lost here too (call control re-homes).
    this.liveness.on('stalled', () => void this.mrm.reconcile('this node stalled').catch(() => undefined));
    // Heard again after a silence (same boot, or back after being declared down): agree on what lies between us.
    const reconcile = (peer: string, reason: string) =>
      void this.reconciler
        .with(peer, reason)
        .catch((err: unknown) => this.log.warn({ peer, err: errorMessage(err) }, 'reconciliation failed'));
    this.liveness.on('node_reachable', (s) => reconcile(s.node, `${s.node} reachable again`));
    this.liveness.on('node_up', (s) => reconcile(s.node, `${s.node} up`));
    this.reconcileTimer = setInterval(() => {
      void this.mrm.reconcile('periodic check').catch(() => undefined);
      for (const s of this.liveness.states()) if (s.up) reconcile(s.node, 'periodic check');
    }, RECONCILE_MS);
    this.reconcileTimer.unref();
    this.lag.start();
    this.liveness.start();
    // Devices are offered to the cluster only once their media can open at once: a first call must not wait out a worker's load.
    await this.media?.ready();
    await this.devices.start(this.name);
    await this.devices.watchNodes(this.model.deviceNodesFor(this.name));
    for (const r of this.model.resourcesOn(this.name)) this.hostResource(r);
    for (const p of this.model.phonesServedBy(this.name)) {
      if (p.node === this.name) this.hostPhone(p);
      else this.hostStandbyPhone(p);
    }
    for (const t of this.model.trunksOn(this.name)) await this.hostTrunk(t);
    this.tokens_ = this.opts.adminTokens ?? new AdminTokens(this.model);
    await this.cdrStore.open();
    const restored = await this.readBackPhones();
    await this.forOwnEntries((e) => this.devices.register(e));
    if (this.opts.sip !== false) await this.startSip();
    for (const { number, registration } of restored) await this.sip?.registrar.bind(number, registration, undefined);
    if (restored.length) this.log.info({ phones: restored.length }, 'registrations restored from the mapping table');
    if (this.opts.admin !== false) {
      this.admin = new AdminServer(this, this.tokens);
      await this.admin.listen(this.opts.adminPort);
    }
    this.history.start();
    this.retireTimer = setInterval(() => {
      void this.dropRetired();
      this.checkDeviceAlarms();
    }, 1000);
    this.retireTimer.unref();
    this.running = true;
    this.log.info(
      { boot: this.boot, resources: this.resources.length, admin: this.admin?.url },
      'call manager started',
    );
  }

  /**
   * Writes (or removes) every entry of this node: its devices all at once
   * (the store may write them as one list), its numbers a few at a time.
   */
  private async forOwnEntries(act: (e: RegistryEntry) => Promise<void>): Promise<void> {
    const own = [...this.own];
    await Promise.all([
      Promise.all(own.filter((e) => e.kind === 'media_resource').map(act)),
      forEachLimited(
        own.filter((e) => e.kind !== 'media_resource'),
        WRITES_IN_FLIGHT,
        act,
      ),
    ]);
  }

  /**
   * graceful: releases what this node holds, unregisters its devices and says
   * goodbye, so the others react at once. Not graceful: goes silent as a crash
   * would (the others notice after node_down_after_ms).
   */
  async stop(graceful = true): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (graceful) {
      await Promise.all(this.mrm.allocations().map((a) => a.release()));
      await this.forOwnEntries((e) => this.devices.unregister(e).catch(() => {}));
    }
    this.sip?.trunkPeers.stop();
    await this.sip?.calls.stop();
    this.sip?.registrar.close();
    this.sip?.stack.close();
    await this.sip?.transport.close();
    this.media?.close();
    clearInterval(this.reconcileTimer);
    clearInterval(this.retireTimer);
    this.history.stop();
    await this.cdrStore.flush();
    await this.opts.cdrArchive?.flush();
    this.opts.cdrArchive?.close();
    this.lag.stop();
    this.liveness.stop(graceful);
    this.loads.stop();
    this.controlSub?.unsubscribe();
    this.post.stop();
    await this.store.close();
    await this.admin?.close();
    this.log.info({ graceful }, 'call manager stopped');
  }

  /**
   * A lease is only as good as its requester's liveness. A requester this node
   * has not heard a heartbeat from yet is watched from now on (so a crash
   * before its first heartbeat still frees the lease); a lease from an
   * incarnation already gone (replaced or said goodbye) is void at once.
   */
  private watchRequester(proc: MediaResourceProcess, req: { node: string; boot: string }): void {
    if (req.node === this.name || this.liveness.bootOf(req.node) === req.boot) return;
    if (!this.liveness.heardFrom(req.node, req.boot)) {
      this.log.warn({ peer: req.node, boot: req.boot }, 'lease from a node incarnation that is gone; reclaiming');
      void proc.deliver({ op: 'reclaim', node: req.node, boot: req.boot });
    }
  }

  private async startSip(): Promise<void> {
    const spec = this.model.nodes.get(this.name)!;
    const sipAt = splitHostPort(spec.sip);
    const tcp = this.model.config.sip.tcp;
    let tls: SipTlsOptions | undefined;
    if (spec.sipTls) {
      const { host, port } = splitHostPort(spec.sipTls);
      const c = await sipCertificate({
        configured: this.model.config.sip.tls,
        baseDir: this.model.baseDir,
        cluster: this.model.config.cluster.name,
        node: this.name,
        host,
      });
      if (c.created)
        this.log.warn(
          { cert: c.certFile },
          'SIP over TLS: made a self-signed certificate; give it to phones as their CA, or set sip.tls',
        );
      tls = { host, port, cert: c.cert, key: c.key };
    }
    const transport = new SipTransport(
      sipAt.host,
      sipAt.port,
      this.log.child({ component: 'sip' }),
      {
        maxConnectionsPerSource: tcp.max_connections_per_source,
        maxConnections: tcp.max_connections,
        idleTimeoutMs: tcp.idle_timeout_s * 1000,
        messageTimeoutMs: tcp.message_timeout_s * 1000,
      },
      tls,
    );
    await transport.listen();
    const stack = new SipStack(transport, spec.sip, this.log.child({ component: 'sip' }));
    const sipCfg = this.model.config.sip;
    const digest = new DigestAuth(sipCfg.realm ?? this.model.config.cluster.name, {
      nonceTtlMs: sipCfg.auth.nonce_ttl_s * 1000,
      algorithms: sipCfg.auth.algorithms,
    });
    const throttle = new AuthThrottle({
      maxFailures: sipCfg.auth.max_failures,
      lockoutMs: sipCfg.auth.lockout_s * 1000,
      log: this.log.child({ component: 'sip-auth' }),
      // (a moment's event: shown until acknowledged)
      onLockout: (key, id) => {
        this.alarms.raise(
          `sip_lockout:${key}:${id}`,
          'sip_lockout',
          `SIP ${key} ${id} locked out after repeated failures`,
        );
        this.alarms.clear(`sip_lockout:${key}:${id}`);
      },
    });
    const registrar = new Registrar({
      model: this.model,
      node: this.name,
      phone: (n) => this.phones.get(n),
      publish: (n, r) => this.publishRegistration(n, r),
      controls: (n) => this.controls(n),
      log: this.log.child({ component: 'registrar' }),
    });
    transport.ladder = this.sipLadder;
    // The trunks' servers are looked up before calls are taken: a call in is known by its server's address.
    const trunkPeers = new TrunkPeers({
      trunks: () => this.model.trunksOn(this.name),
      dns: nameLookup(sipCfg.dns_servers),
      refreshS: sipCfg.dns_refresh_s,
      baseDir: () => this.model.baseDir,
      log: this.log.child({ component: 'trunk' }),
    });
    await trunkPeers.start();
    const calls = new CallControl({
      trunkPeers,
      ladder: this.sipLadder,
      model: this.model,
      node: this.name,
      bus: this.bus,
      subjects: this.subjects,
      stack,
      registrar,
      mrm: this.mrm,
      devices: this.devices,
      liveness: this.liveness,
      phones: {
        get: (n) => this.phones.get(n) ?? this.trunkLines.get(n),
        has: (n) => this.phones.has(n) || this.trunkLines.has(n),
      },
      sipAddress: spec.sip,
      ...(tls ? { sipTlsAddress: `${tls.host}:${transport.localTlsPort}` } : {}),
      controls: (n) => this.controls(n),
      record: (r) => {
        this.cdrStore.add(r);
        this.opts.cdrArchive?.put(encode(r));
      },
      learnCodecs: (n, codecs, from) =>
        void this.learnCodecs(n, codecs, from).catch((err: unknown) => this.log.warn({ err }, 'codecs not recorded')),
      log: this.log.child({ component: 'calls' }),
    });
    const authenticator = new SipAuthenticator({
      model: this.model,
      digest,
      throttle,
      registeredFrom: (n) => this.phones.get(n)?.snapshot().registration,
      fromTrunk: (from) => trunkPeers.trunkAt(from) !== undefined,
      knowsDialog: (req) => calls.knowsDialog(req),
      overloaded: () => this.lag.overloaded,
      admitSetup: (waitedMs) => {
        const sip = this.model.config.sip;
        if (waitedMs > sip.max_queue_delay_ms) return 'queue_delay';
        return calls.setupsInProgress >= sip.max_setups_in_progress ? 'setups_over_limit' : undefined;
      },
      log: this.log.child({ component: 'sip-auth' }),
    });
    stack.gate = (req, from, waitedMs) => authenticator.gate(req, from, waitedMs);
    // Under a UDP flood, registered phones' datagrams are handled before strangers'.
    transport.knownPeer = (address, port) =>
      registrar.knowsPeer(address, port) || trunkPeers.trunkAt({ transport: 'UDP', address, port }) !== undefined;
    calls.start();
    this.sip = { transport, stack, registrar, calls, throttle, authenticator, trunkPeers };
    // Call Manager Groups: a node of a phone's group going or coming changes who controls it.
    const reevaluate = () =>
      void registrar
        .reevaluate()
        .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'phone failover check failed'));
    this.liveness.on('node_down', reevaluate);
    this.liveness.on('node_up', reevaluate);
    this.devices.on('registered', (e) => {
      if (e.kind === 'phone' && e.node !== this.name && e.registration) {
        void registrar
          .takenElsewhere(e.name, e.node)
          .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'phone failover check failed'));
      }
    });
  }

  /**
   * A conference room opened or closed on one of this node's bridges: the
   * mapping table says where room conf-<number> runs, so participants
   * calling in from any node join the same bridge.
   */
  private async conferenceRoom(device: string, room: string, open: boolean): Promise<void> {
    // Ad hoc rooms are not dialled: their participants are sent to the bridge by name.
    if (!/^[0-9]{1,15}$/.test(room)) return;
    const pid = this.resources.find((p) => p.name === device)?.pid;
    if (!pid) return;
    const name = `conf-${room}`;
    const entry: RegistryEntry = {
      name,
      kind: 'conference',
      type: 'conference_bridge',
      pid,
      node: this.name,
      boot: this.boot,
    };
    /** The bridge the mapping table names for the conference, when it is another one than ours. */
    const elsewhere = () => {
      const found = this.devices.lookup(name);
      return found.registered && found.entry.pid !== pid ? parsePid(found.entry.pid)?.name : undefined;
    };
    const link = (other: string) =>
      this.mrm
        .linkRooms(room, device, other)
        .catch((err: unknown) =>
          this.log.warn({ room, device, other, err: errorMessage(err) }, 'conference not linked'),
        );
    try {
      if (!open) {
        // Only our own entry: a room that linked to another bridge never took the name.
        if (!elsewhere()) await this.devices.unregister(entry);
        return;
      }
      // One conference cluster-wide: it runs on another bridge already, so this room links to it.
      const other = elsewhere();
      if (other) return void (await link(other));
      await this.devices.register(entry);
      // Two first participants at once on two bridges: the mapping table keeps one entry; the other room links to it.
      setTimeout(() => {
        const winner = elsewhere();
        if (winner) void link(winner);
      }, 3 * this.model.config.cluster.request_timeout_ms).unref();
    } catch (err) {
      this.log.warn({ room, device, err: errorMessage(err) }, 'conference room not published');
    }
  }

  /** Whether this node controls the phone now (the first alive node of its Call Manager Group). */
  controls(number: string): boolean {
    const phone = this.model.phones.get(number);
    return phone !== undefined && controllerOf(phone, this.name, this.liveness) === this.name;
  }

  /** A phone's SIP registration (or its end) into its mapping table entry. */
  private async publishRegistration(number: string, registration: Registration | undefined): Promise<void> {
    // (a new device registering as the number made its phone process forget the codecs learnt of the last one)
    await this.publishPhone(number, { registration, codecs: this.phones.get(number)?.snapshot().codecs });
  }

  /** Codecs learnt from a phone's SDP: kept by its phone process, and in its mapping table entry when they changed. */
  private async learnCodecs(number: string, codecs: Codec[], from: 'offer' | 'answer' | 'refused'): Promise<void> {
    const proc = this.phones.get(number);
    if (!proc) return;
    const before = proc.snapshot().codecs;
    const after = ((await proc.deliver({ op: 'codecs', codecs, from })) as { codecs: Codec[] | undefined }).codecs;
    if (after?.join() !== before?.join()) await this.publishPhone(number, { codecs: after });
  }

  /** Rewrites a phone's mapping table entry with a new registration and/or learnt codecs. */
  private async publishPhone(
    number: string,
    change: { registration?: Registration | undefined; codecs?: Codec[] | undefined },
  ): Promise<void> {
    let i = this.own.findIndex((e) => e.name === number && e.kind === 'phone');
    if (i < 0) {
      // A phone of this node's group that registered here (or came back here): its entry starts now.
      const proc = this.phones.get(number);
      if (!proc || !('registration' in change)) return;
      i = this.own.push(this.phoneEntry(proc)) - 1;
    }
    const { registration: oldReg, codecs: oldCodecs, ...base } = this.own[i]!;
    const registration = 'registration' in change ? change.registration : oldReg;
    const codecs = 'codecs' in change ? change.codecs : oldCodecs;
    if (codecs?.join() === oldCodecs?.join() && quietRefresh(oldReg, registration, Date.now())) return;
    const entry: RegistryEntry = { ...base, ...(registration ? { registration } : {}), ...(codecs ? { codecs } : {}) };
    this.own[i] = entry;
    await this.devices.register(entry);
  }

  /** Why a mapping table entry cannot be true of this cluster's config (a forged or foreign entry), or undefined. */
  private entryProblem(e: RegistryEntry): string | undefined {
    const pid = parsePid(e.pid);
    if (!pid || pid.node !== e.node || pid.boot !== e.boot) return 'its PID does not name its node and boot';
    if (e.kind === 'phone')
      return this.model.phones.get(e.name)?.callManagers.includes(e.node)
        ? undefined
        : `phone ${e.name} is not controlled by ${e.node}`;
    const device = this.model.resources.get(pid.name);
    if (!device || device.node !== e.node) return `${pid.name} is not a device of ${e.node}`;
    if (e.kind === 'media_resource') return e.name === pid.name ? undefined : 'name and PID differ';
    return /^conf-[0-9]{1,15}$/.test(e.name) && device.type === 'conference_bridge'
      ? undefined
      : 'not a conference room on a bridge';
  }

  /** Values read from the mapping table since start (each checked against its signer). */
  get mappingTableReads(): number {
    return this.store.reads;
  }

  /** Counts of refused input at this node's edges, for /metrics. */
  refusals(): Refusal[] {
    const out: Refusal[] = [];
    if (this.sip) {
      const t = this.sip.throttle.stats;
      out.push(
        { edge: 'sip', reason: 'wrong_password', count: t.failures },
        { edge: 'sip', reason: 'throttled', count: t.refused },
        { edge: 'sip', reason: 'lockout', count: t.lockouts },
        { edge: 'sip', reason: 'stateless_answer', count: this.sip.stack.statelessAnswers },
        { edge: 'sip', reason: 'foreign_in_dialog', count: this.sip.calls.refusedInDialog },
        { edge: 'sip', reason: 'malformed', count: this.sip.transport.stats.malformed },
        { edge: 'sip', reason: 'tcp_over_cap', count: this.sip.transport.stats.tcpRefused },
        { edge: 'sip', reason: 'overloaded', count: this.sip.authenticator.shed },
        { edge: 'sip', reason: 'setups_over_limit', count: this.sip.authenticator.setupsRefused.setups_over_limit },
        { edge: 'sip', reason: 'queue_delay', count: this.sip.authenticator.setupsRefused.queue_delay },
        { edge: 'sip', reason: 'tcp_timeout', count: this.sip.transport.stats.tcpTimedOut },
        { edge: 'sip', reason: 'tls_handshake_timeout', count: this.sip.transport.stats.tlsHandshakeTimedOut },
        { edge: 'sip', reason: 'flood_dropped', count: this.sip.transport.intake.stats.dropped },
      );
    }
    if (this.media) {
      out.push({ edge: 'rtp', reason: 'stranger', count: this.media.counters.strangers });
      out.push({ edge: 'rtp', reason: 'srtp_auth', count: this.media.counters.srtpAuthFailures });
      out.push({ edge: 'rtp', reason: 'srtp_replay', count: this.media.counters.srtpReplays });
    }
    for (const [reason, count] of this.busRefused) out.push({ edge: 'bus', reason, count });
    out.push({ edge: 'bus', reason: 'mapping_table_contradicts_config', count: this.devices.refused });
    return out;
  }

  localResources(): readonly MediaResourceProcess[] {
    return this.resources;
  }

  /** Status of every device hosted by a node (this one or a remote one). */
  /** Starts the device process of a media resource this node hosts (its mapping table entry is registered by the caller). */
  private hostResource(r: ResourceSpec): RegistryEntry {
    const pid = makePid({ node: this.name, kind: 'media_resource', name: r.name, boot: this.boot });
    const proc = new MediaResourceProcess(pid, r, {
      onLoad: (n, a, c, v) => this.loads.reportLocal(n, a, c, v),
      onLease: (req) => this.watchRequester(proc, req),
      media: this.media,
      mediaThreads: this.model.nodes.get(this.name)?.rtp
        ? Math.max(1, mediaThreads(this.model.nodes.get(this.name)!.rtp!.workers))
        : 1,
      linkProblem: (peer, remote) => this.linkProblem(peer, remote),
      onMediaEvent: (holder, e) => {
        const signal =
          e.type === 'lost'
            ? { op: 'device_lost', allocation: holder.allocation, reason: e.reason }
            : {
                op: 'device_dtmf',
                allocation: holder.allocation,
                from_leg: e.fromLeg,
                digit: e.digit,
                duration_ms: e.durationMs,
              };
        this.bus
          .request(this.subjects.calls(holder.node), encode(signal), this.model.config.cluster.request_timeout_ms)
          .catch((err: unknown) => this.log.warn({ err: errorMessage(err), holder }, 'media event not delivered'));
      },
    });
    this.resources.push(proc);
    this.post.host(proc);
    const entry: RegistryEntry = {
      name: r.name,
      kind: 'media_resource',
      type: r.type,
      pid,
      node: this.name,
      boot: this.boot,
    };
    this.own.push(entry);
    return entry;
  }

  /** A conference link may only point at another bridge of the config, at the RTP address and ports of that bridge's node. */
  private linkProblem(peer: string, remote: { address: string; port: number } | undefined): string | undefined {
    const bridge = this.model.resources.get(peer);
    if (bridge?.type !== 'conference_bridge') return `${peer} is not a conference bridge of the cluster`;
    const rtp = this.model.nodes.get(bridge.node)?.rtp;
    if (!rtp) return `${peer}'s node ${bridge.node} carries no media`;
    if (remote && (remote.address !== rtp.address || remote.port < rtp.portMin || remote.port > rtp.portMax)) {
      return `${remote.address}:${remote.port} is not a media address of ${bridge.node}`;
    }
    return undefined;
  }

  /** A phone whose own node this is: its process, and its mapping table entry (registered by the caller). */
  private hostPhone(p: PhoneSpec): RegistryEntry {
    const entry = this.phoneEntry(this.hostStandbyPhone(p));
    this.own.push(entry);
    return entry;
  }

  /** A phone this node may control (its Call Manager Group lists it): its process; an entry only once it controls it. */
  private hostStandbyPhone(p: PhoneSpec): PhoneProcess {
    const pid = makePid({ node: this.name, kind: 'phone', name: p.number, boot: this.boot });
    const proc = new PhoneProcess(pid, p);
    this.phones.set(p.number, proc);
    this.post.host(proc);
    return proc;
  }

  /** The trunks this node carries: their far ends, calls through them now, and this node's registration there. */
  trunkViews(): TrunkView[] {
    const registrations = new Map((this.sip?.calls.trunkRegistrations() ?? []).map((r) => [r.trunk, r]));
    return [...this.trunkLines].map(([name, line]) => {
      const t = this.model.trunks.get(name);
      return {
        trunk: name,
        nodes: [...(t?.nodes ?? [])],
        peers: this.sip?.calls.trunkPeers(name) ?? [],
        ...(this.sip?.calls.trunkCounts(name) ?? {}),
        calls: line.snapshot().calls.length,
        max_calls: t?.maxCalls ?? 0,
        registration: registrations.get(name) ?? null,
      };
    });
  }

  /**
   * A trunk this node carries: a line process (its calls at once), always
   * "registered" at its first peer. Local only: other nodes reach a trunk
   * through the nodes its config names, not through the mapping table.
   */
  private async hostTrunk(t: TrunkSpec): Promise<void> {
    const proc = new PhoneProcess(makePid({ node: this.name, kind: 'trunk', name: t.number, boot: this.boot }), t);
    const p = t.peers[0]!;
    await proc.deliver({
      op: 'register',
      registration: {
        contact: `sip:${p.host}:${p.port ?? 5060}`,
        transport: t.transport,
        address: p.host,
        port: p.port ?? 5060,
        expires_at: Number.MAX_SAFE_INTEGER,
      },
      mrgl: undefined,
    });
    this.trunkLines.set(t.number, proc);
  }

  private phoneEntry(proc: PhoneProcess): RegistryEntry {
    return { name: proc.name, kind: 'phone', pid: proc.pid, node: this.name, boot: this.boot };
  }

  /**
   * What the mapping table says of this node's own phones from before this
   * start: a registration of this node's earlier incarnation that has not
   * expired is taken back (the phone is reachable at once, without waiting
   * for its next REGISTER); a phone another node of its group holds now is
   * left there (not overwritten) until it registers here again.
   */
  private async readBackPhones(): Promise<Array<{ number: string; registration: Registration }>> {
    const now = Date.now();
    const restored: Array<{ number: string; registration: Registration }> = [];
    await Promise.all(
      [...this.own]
        .filter((e) => e.kind === 'phone')
        .map(async (e) => {
          const prev = await this.store.get(e.name).catch(() => undefined);
          const reg = prev?.registration;
          if (!prev || !reg || reg.expires_at <= now) return;
          if (prev.node === this.name) restored.push({ number: e.name, registration: reg });
          else {
            this.own.splice(this.own.indexOf(e), 1);
            this.log.info(
              { phone: e.name, at: prev.node },
              'phone registered at another node of its group: left there until it registers here',
            );
          }
        }),
    );
    return restored;
  }

  /**
   * tandem apply, on this node: checks `next` against what runs, then takes
   * it over in place (ClusterModel.adopt) and starts, reconfigures or
   * retires this node's device processes and phones. Calls keep their
   * allocations; a removed device drains and goes once idle. A refused
   * version leaves everything as it was.
   */
  async applyConfig(next: ClusterModel, by: string): Promise<ConfigApplyReply> {
    const base = { node: this.name, changes: [] as string[] };
    if (next.version === this.model.version) return { ...base, status: 'unchanged', version: this.model.version };
    const problems = this.configProblems(next);
    if (problems.length) {
      this.events.record(
        'config_refused',
        `version ${next.version} refused: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      );
      this.log.warn({ version: next.version, problems }, 'configuration refused');
      return { ...base, status: 'refused', version: this.model.version, problems };
    }
    const changes = changesFor(this.model, next, this.name);
    const from = this.model.version;
    this.model.adopt(next);
    // (a trunk's peers may have changed: looked up again, calls meanwhile use the servers found before)
    void this.sip?.trunkPeers
      .refresh()
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'trunk lookup failed'));
    const added = [
      ...changes.added.map((r) => this.hostResource(r)),
      ...changes.phonesAdded.map((p) => this.hostPhone(p)),
    ];
    await Promise.all(added.map((e) => this.devices.register(e)));
    const byName = new Map(this.resources.map((p) => [p.name, p]));
    await Promise.all([
      ...changes.changed.map((r) => byName.get(r.name)?.deliver({ op: 'reconfigure', spec: r })),
      ...changes.removed.map((n) => byName.get(n)?.deliver({ op: 'retire' })),
      ...changes.phonesChanged.map((p) => this.phones.get(p.number)?.deliver({ op: 'reconfigure', spec: p })),
    ]);
    for (const n of changes.phonesRemoved) this.retiringPhones.add(n);
    const standby = await this.applyGroups();
    await this.dropRetired();
    // Entries published by nodes that applied first may have been refused here.
    this.devices.recheck();
    // MRGLs may name devices of nodes not watched yet (watched from now on; none is dropped while calls may use it).
    await this.devices.watchNodes(this.model.deviceNodesFor(this.name));
    const lines = [...describeChanges(changes), ...standby];
    this.configVersions.record(next.version, this.configText(next), by);
    this.events.record(
      'config_applied',
      `version ${from} -> ${next.version} by ${by}${lines.length ? `: ${lines.join('; ')}` : ' (nothing of this node changed)'}`,
    );
    this.log.info({ from, version: next.version, client: by, changes: lines }, 'configuration applied');
    return { ...base, status: 'applied', version: next.version, changes: lines };
  }

  /** A configuration's text as the operator wrote it, else written out from what it says. */
  configText(m: ClusterModel): string {
    return m.sourceText ?? toYaml(m.config);
  }

  /** Why `next` cannot replace the running configuration here (empty: it can); its files are looked for beside ours. */
  configProblems(next: ClusterModel): ConfigProblem[] {
    next.baseDir = this.model.baseDir;
    return [...unappliable(this.model, next), ...mediaFileProblems(next)];
  }

  /** Asks a node (this one included) to apply a configuration; a node that is down or does not answer says so. */
  async applyOn(
    node: string,
    config: unknown,
    parsed: ClusterModel,
    authority: OperatorAuthority,
    /** the operator's name (kept in the history of versions) */
    by: string,
  ): Promise<ConfigApplyReply> {
    if (node === this.name) return this.applyConfig(parsed, by);
    if (!this.liveness.isUp(node)) return { node, status: 'down', version: null, changes: [] };
    try {
      const raw = await this.bus.request(
        this.subjects.nodeControl(node),
        encode({
          op: 'config_apply',
          config,
          ...(parsed.sourceText !== undefined ? { text: parsed.sourceText } : {}),
          authority,
        }),
        // A node may take a while over a large config, but the operator's answer must come
        // within the admin route's bound (this node's own apply still to follow).
        Math.min(ROUTE_WORK_MAX_MS - 5_000, Math.max(10_000, this.model.config.cluster.request_timeout_ms * 10)),
        {
          confidential: true, // the config holds the phones' passwords, the authority the operator's token
        },
      );
      const p = parseMessage(ConfigApplyReply, raw);
      return p.ok
        ? p.value
        : {
            node,
            status: 'unreachable',
            version: null,
            changes: [],
            problems: [{ path: '(reply)', message: p.error }],
          };
    } catch (err) {
      return {
        node,
        status: 'unreachable',
        version: null,
        changes: [],
        problems: [{ path: '(bus)', message: errorMessage(err) }],
      };
    }
  }

  /**
   * The walk an allocation for `req.phone` would make, as the node that
   * controls the phone would make it: here, or asked of that node over the
   * bus (the console and the CLI may ask any node).
   */
  async explainAnywhere(req: AllocationRequest): Promise<Trace> {
    // (a trunk: any node that carries it walks the same MRGL, this one first)
    const trunk = this.model.trunks.get(req.phone);
    const spec = trunk ?? this.model.phones.get(req.phone);
    const owner = trunk?.nodes.includes(this.name) ? this.name : spec && controllerOf(spec, this.name, this.liveness);
    if (!spec || !owner || owner === this.name) return this.mrm.explain(req);
    const ask: ExplainRequest = {
      op: 'explain',
      phone: req.phone,
      type: req.type,
      ...(req.mrgl ? { mrgl: req.mrgl } : {}),
      ...(req.requirement ? { requirement: req.requirement } : {}),
    };
    const raw = await this.bus.request(
      this.subjects.nodeControl(owner),
      encode(ask),
      this.model.config.cluster.request_timeout_ms * 4,
    );
    const trace = parseMessage(TraceReply, raw);
    if (trace.ok) return trace.value satisfies Trace;
    const refusal = parseMessage(ExplainRefusal, raw);
    if (refusal.ok && refusal.value.code !== 'internal')
      throw new AllocationError(refusal.value.code, `${owner}: ${refusal.value.error}`);
    throw new Error(
      refusal.ok ? `${owner}: ${refusal.value.error}` : `malformed explain reply from ${owner}: ${trace.error}`,
    );
  }

  /** Drains (or undrains) a device of another node for an operator: that node checks the operator's token itself. */
  async drainOn(node: string, device: string, draining: boolean, authority: OperatorAuthority): Promise<DeviceStatus> {
    return this.operatorActOn(node, { op: 'drain', device, draining, authority }, DeviceStatus);
  }

  /**
   * An operator's act sent to another node, sealed (the operator's token goes along; that node checks it
   * itself): its answer, or OperatorActRefused with that node's reason.
   */
  private async operatorActOn<T>(
    node: string,
    act: NodeControlRequestIn & { authority: OperatorAuthority },
    reply: ZodType<T>,
    timeoutMs = this.model.config.cluster.request_timeout_ms,
  ): Promise<T> {
    const raw = await this.bus.request(this.subjects.nodeControl(node), encode(act), timeoutMs, {
      confidential: true,
    });
    const p = parseMessage(reply, raw);
    if (p.ok) return p.value;
    const refusal = parseMessage(ControlRefusal, raw);
    throw new OperatorActRefused(
      refusal.ok ? refusal.value.error : `malformed ${act.op} reply from ${node}: ${p.error}`,
    );
  }

  /**
   * The operator behind an act another node forwards (a config, a drain):
   * the token must be one of this node's operator tokens, and must have come
   * sealed. Refusals are logged and shown with the forwarding node's name.
   */
  private operatorOf(m: BusMessage, authority: OperatorAuthority, act: string): AdminPrincipal | string {
    const who = m.from && !m.sealed ? undefined : this.tokens.verifyToken(authority.token);
    if (who?.role === 'operator') return who;
    const why =
      m.from && !m.sealed
        ? 'it came unsealed'
        : who
          ? `token "${who.name}" is a viewer`
          : 'it carries no operator token known here';
    this.log.warn({ from: m.from?.node, act, why }, 'operator act refused');
    this.events.record(
      'operator_act_refused',
      `${act} forwarded by ${m.from?.node ?? 'an unsigned sender'} refused: ${why}`,
    );
    return `${act} refused by ${this.name}: ${why}`;
  }

  /**
   * Call Manager Groups after an apply: phones of other nodes that now list
   * this node get a standby process here at once (not at the next restart);
   * phones that no longer list it lose theirs once idle; the others take
   * their new spec.
   */
  private async applyGroups(): Promise<string[]> {
    const lines: string[] = [];
    const served = new Map(this.model.phonesServedBy(this.name).map((p) => [p.number, p]));
    for (const p of served.values()) {
      if (p.node === this.name) continue;
      const proc = this.phones.get(p.number);
      if (!proc) {
        this.hostStandbyPhone(p);
        lines.push(`backs up phone ${p.number} (standby)`);
      } else if (JSON.stringify(proc.spec) !== JSON.stringify(p)) await proc.deliver({ op: 'reconfigure', spec: p });
    }
    for (const number of this.phones.keys()) {
      if (served.has(number) || this.retiringPhones.has(number)) continue;
      this.retiringPhones.add(number);
      lines.push(`no longer backs up phone ${number}`);
    }
    return lines;
  }

  /** Devices and phones removed from the config go once nothing uses them. */
  private async dropRetired(): Promise<void> {
    const drop = async (name: string, kind: RegistryEntry['kind']) => {
      const i = this.own.findIndex((e) => e.name === name && e.kind === kind);
      if (i < 0) return;
      const [entry] = this.own.splice(i, 1);
      this.post.evict(entry!.pid);
      await this.devices
        .unregister(entry!)
        .catch((err: unknown) => this.log.warn({ device: name, err: errorMessage(err) }, 'unregister failed'));
      this.log.info({ device: name, kind }, 'removed from the configuration: gone');
    };
    for (const proc of [...this.resources]) {
      if (!proc.isRetired || proc.active > 0) continue;
      this.resources.splice(this.resources.indexOf(proc), 1);
      await drop(proc.name, 'media_resource');
    }
    for (const number of [...this.retiringPhones]) {
      const proc = this.phones.get(number);
      if (proc && proc.snapshot().calls.length > 0) continue;
      this.retiringPhones.delete(number);
      this.phones.delete(number);
      // (a standby phone has no entry of this node: only its process goes)
      if (proc && !this.own.some((e) => e.kind === 'phone' && e.name === number)) this.post.evict(proc.pid);
      await drop(number, 'phone');
    }
    this.history.retain(new Set(this.resources.map((p) => p.name)));
  }

  /**
   * The call detail records that match, from every node of the cluster
   * (each keeps its own), newest first; `missing` names the nodes that did
   * not answer (their records are not in the list).
   */
  async cdrs(
    filter: CdrFilter,
  ): Promise<{ records: CallDetailRecord[]; missing: string[]; archived: string[]; partial: boolean }> {
    const { lists, missing: silent } = await this.askEveryNode({ op: 'cdrs', filter }, CdrReply, () => ({
      node: this.name,
      records: this.cdrStore.query(filter),
    }));
    // A node that does not answer (down, cut off): its records from the cluster's archive, when there is one.
    const archived: string[] = [];
    const missing: string[] = [];
    let partial = false;
    await Promise.all(
      silent.map(async (node) => {
        const from = await this.archivedCdrs(node, filter);
        if (!from) return void missing.push(node);
        archived.push(node);
        lists.push({ node, records: from.records });
        partial ||= from.partial;
      }),
    );
    const records = lists
      .flatMap((l) => l.records)
      .sort((a, b) => b.started_at - a.started_at || a.call.localeCompare(b.call) || a.role.localeCompare(b.role));
    return { records: records.slice(0, filter.limit), missing: missing.sort(), archived: archived.sort(), partial };
  }

  /** A node's records as the archive has them (undefined: no archive, or it cannot be read now). */
  private async archivedCdrs(
    node: string,
    filter: CdrFilter,
  ): Promise<{ records: CallDetailRecord[]; partial: boolean } | undefined> {
    if (!this.opts.cdrArchive) return undefined;
    try {
      const read = await this.opts.cdrArchive.read(node, filter.since);
      const records: CallDetailRecord[] = [];
      for (let i = read.records.length - 1; i >= 0 && records.length < filter.limit; i--) {
        const p = parseMessage(CallDetailRecord, read.records[i]!);
        // (a record of another node's subject claiming to be someone else's is not taken)
        if (p.ok && p.value.node === node && cdrMatches(p.value, filter)) records.push(p.value);
      }
      return { records, partial: read.partial };
    } catch (err) {
      this.log.warn({ peer: node, err: errorMessage(err) }, 'call records archive not readable');
      return undefined;
    }
  }

  /**
   * The SIP ladder of a call: the messages every node exchanged for its
   * dialogs, oldest first, each with the node that saw it; `missing` names
   * the nodes that did not answer.
   */
  async ladder(call: string): Promise<{ messages: Array<LadderMessage & { node: string }>; missing: string[] }> {
    const { lists, missing } = await this.askEveryNode({ op: 'ladder', call }, LadderReply, () => ({
      node: this.name,
      messages: this.sipLadder.of(call),
    }));
    const messages = lists.flatMap((l) => l.messages.map((m) => ({ ...m, node: l.node }))).sort((a, b) => a.at - b.at);
    return { messages, missing };
  }

  /** A control request to every node (this one answered by `local`), each reply checked; the silent and the malformed named. */
  private async askEveryNode<T extends { node: string }>(
    request: NodeControlRequestIn,
    reply: ZodType<T>,
    local: () => T,
  ): Promise<{ lists: T[]; missing: string[] }> {
    const missing: string[] = [];
    const lists = await Promise.all(
      [...this.model.nodes.keys()].map(async (node): Promise<T[]> => {
        if (node === this.name) return [local()];
        try {
          const raw = await this.bus.request(
            this.subjects.nodeControl(node),
            encode(request),
            this.model.config.cluster.request_timeout_ms * 4,
          );
          const p = parseMessage(reply, raw);
          if (!p.ok) throw new Error(p.error);
          return [p.value];
        } catch (err) {
          this.log.debug({ node, op: request.op, err: errorMessage(err) }, 'no answer from a node');
          missing.push(node);
          return [];
        }
      }),
    );
    return { lists: lists.flat(), missing };
  }

  /** A node's devices (and, with `detail`, its calls, media sessions and events; with `history`, its last hour). */
  async nodeStatus(
    node: string,
    want: { detail?: boolean; history?: boolean; history_day?: boolean } = {},
  ): Promise<NodeStatusReply> {
    if (node === this.name) return this.localStatus(want);
    const raw = await this.bus.request(
      this.subjects.nodeControl(node),
      encode({ op: 'node_status', ...want }),
      this.model.config.cluster.request_timeout_ms,
    );
    const p = parseMessage(NodeStatusReply, raw);
    if (!p.ok) throw new Error(`malformed status reply from ${node}: ${p.error}`);
    return p.value;
  }

  private async localStatus(
    want: { detail?: boolean | undefined; history?: boolean | undefined; history_day?: boolean | undefined } = {},
  ): Promise<NodeStatusReply> {
    const devices = (await Promise.all(this.resources.map((p) => p.deliver({ op: 'status' })))) as DeviceStatus[];
    return {
      node: this.name,
      boot: this.boot,
      config_version: this.model.version,
      devices,
      ...(want.detail
        ? {
            calls: this.sip?.calls.calls() ?? [],
            media: (await this.media?.describe()) ?? [],
            events: this.events.recent(100),
            trunks: this.trunkViews(),
            alarms: this.alarms.list(),
          }
        : {}),
      ...(want.history ? { history: this.history.snapshot(want.history_day === true) } : {}),
    };
  }

  private async control(m: BusMessage): Promise<Uint8Array> {
    const p = parseMessage(NodeControlRequest, m.data);
    if (!p.ok) {
      this.log.warn({ error: p.error }, 'dropped malformed control request');
      return encode({ error: p.error });
    }
    const req = p.value;
    if (req.op === 'node_status') return encode(await this.localStatus(req));
    if (req.op === 'holds') return encode(this.reconciler.holds(req.allocations));
    if (req.op === 'cdrs') return encode({ node: this.name, records: this.cdrStore.query(req.filter) });
    if (req.op === 'ladder') return encode({ node: this.name, messages: this.sipLadder.of(req.call) });
    if (req.op === 'explain') {
      try {
        return encode(
          await this.mrm.explain({ phone: req.phone, type: req.type, mrgl: req.mrgl, requirement: req.requirement }),
        );
      } catch (err) {
        return encode({
          code: err instanceof AllocationError ? err.code : 'internal',
          error: errorMessage(err),
        } satisfies ExplainRefusal);
      }
    }
    if (req.op === 'allocation_release') {
      const who = this.operatorOf(m, req.authority, `release of allocation ${req.id}`);
      if (typeof who === 'string') return encode({ error: who });
      return encode(await this.releaseAllocation(req.id, who.name));
    }
    if (req.op === 'alarm_ack') {
      const who = this.operatorOf(m, req.authority, `acknowledgement of ${req.key}`);
      if (typeof who === 'string') return encode({ error: who });
      return encode({ node: this.name, acknowledged: this.acknowledgeAlarm(req.key, who.name) });
    }
    if (req.op === 'drain') {
      const who = this.operatorOf(m, req.authority, `drain of ${req.device}`);
      if (typeof who === 'string') return encode({ error: who });
      return encode(await this.drainLocal(req.device, req.draining, who.name));
    }
    const who = this.operatorOf(m, req.authority, 'configuration change');
    const refused = (problems: ConfigProblem[]) =>
      encode({
        node: this.name,
        status: 'refused',
        version: this.model.version,
        changes: [],
        problems,
      } satisfies ConfigApplyReply);
    if (typeof who === 'string') return refused([{ path: '(authority)', message: who }]);
    const next = validateConfig(req.config);
    if (!next.ok) return refused(next.problems);
    // The text is kept for the history only if it is the same configuration.
    if (req.text !== undefined) {
      const t = parseConfig(req.text);
      if (t.ok && t.model.version === next.model.version) next.model.sourceText = req.text;
    }
    this.log.info(
      { client: who.name, via: m.from?.node, from: this.model.version, version: next.model.version },
      'configuration change requested',
    );
    return encode(await this.applyConfig(next.model, who.name));
  }

  /**
   * An operator takes an allocation this node holds: a call's is revoked (the
   * call moves to another device, or ends), any other released; logged and in
   * the event log with the operator's name.
   */
  async releaseAllocation(id: string, operator: string): Promise<AllocationReleaseReply> {
    const a = this.mrm.get(id);
    if (!a) return { node: this.name, status: 404, device: null, call: null };
    const call = a.holder.kind === 'call' ? a.holder.call : null;
    if (call) await a.revoke(`released by operator ${operator}`);
    else await a.release();
    this.log.warn(
      { allocation: id, device: a.resource, holder: a.holder, client: operator },
      'allocation released by an operator',
    );
    this.events.record(
      'allocation_released',
      `${a.type} ${a.resource}${call ? ` of call ${call.slice(0, 8)}` : ''} released by ${operator}`,
    );
    return { node: this.name, status: 200, device: a.resource, call };
  }

  /** Asks another node to release an allocation it holds, for an operator (that node checks the token itself). */
  async releaseAllocationOn(node: string, id: string, authority: OperatorAuthority): Promise<AllocationReleaseReply> {
    // (a call's device is revoked and the call re-homed before the answer: longer than a plain request)
    return this.operatorActOn(
      node,
      { op: 'allocation_release', id, authority },
      AllocationReleaseReply,
      this.model.config.cluster.request_timeout_ms * 4,
    );
  }

  /** An operator saw an alarm of this node: logged with their name; false when this node has no such alarm. */
  acknowledgeAlarm(key: string, operator: string): boolean {
    const done = this.alarms.acknowledge(key, operator);
    if (done) this.log.info({ alarm: key, client: operator }, 'alarm acknowledged');
    return done;
  }

  /** Asks another node to acknowledge an alarm for an operator (that node checks the operator's token itself). */
  async acknowledgeAlarmOn(node: string, key: string, authority: OperatorAuthority): Promise<boolean> {
    return (await this.operatorActOn(node, { op: 'alarm_ack', key, authority }, AlarmAckReply)).acknowledged;
  }

  /** Drains (or undrains) a device this node hosts, for the operator named. */
  async drainLocal(device: string, draining: boolean, operator: string): Promise<DeviceStatus | { error: string }> {
    const proc = this.resources.find((r) => r.name === device);
    if (!proc) return { error: `${device} is not hosted by ${this.name}` };
    const s = (await proc.deliver({ op: 'drain', draining })) as DeviceStatus;
    this.log.info({ device, draining, client: operator }, draining ? 'device drained' : 'device undrained');
    this.events.record(
      draining ? 'device_drained' : 'device_undrained',
      `${device} ${draining ? 'drained' : 'undrained'} by ${operator}`,
    );
    return s;
  }

  /** A device of this node at or above its kind's alarm threshold raises device_busy; below it again, clears it. */
  private checkDeviceAlarms(): void {
    const cfg = this.model.config.alarms;
    for (const p of this.resources) {
      const key = `device_busy:${p.name}`;
      const pct = cfg.device_busy_pct_by_type[p.spec.type] ?? cfg.device_busy_pct;
      const { active, capacity } = p;
      if (capacity > 0 && active * 100 >= capacity * pct)
        this.alarms.raise(
          key,
          'device_busy',
          `${p.name} (${p.spec.type}) at ${active}/${capacity}, at or above ${pct} %`,
        );
      else this.alarms.clear(key);
    }
  }

  /** The console's event log: what went wrong or changed, as it happens; and the alarms that come of it. */
  private recordEvents(): void {
    this.mrm.on('failed', (t) => {
      const why = [...new Set(t.steps.map((s) => s.verdict))].join(', ') || 'no device in the MRGL';
      const text = `${t.type} for ${t.phone} refused (MRGL ${t.mrgl ?? 'none'}, ${t.mrgl_source}): ${why}`;
      this.events.record('allocation_refused', text);
      const key = `mrgl_exhausted:${t.mrgl ?? '(none)'}:${t.type}`;
      this.alarms.raise(key, 'mrgl_exhausted', `MRGL ${t.mrgl ?? '(none)'} had no ${t.type} left: ${text}`);
      this.alarms.clear(key);
    });
    this.liveness.on('node_down', (s) =>
      this.alarms.raise(`node_down:${s.node}`, 'node_down', `node ${s.node} is down`),
    );
    this.liveness.on('node_up', (s) => this.alarms.clear(`node_down:${s.node}`));
    this.mrm.on('allocation_lost', (a, reason) => {
      if (a.holder.kind === 'call')
        this.events.record(
          'call_rehomed',
          `call ${a.holder.call.slice(0, 8)} lost ${a.type} ${a.resource} (${reason}): re-homing`,
        );
    });
    this.liveness.on('node_down', (s, reason) => this.events.record('node_down', `${s.node} down (${reason})`));
    this.liveness.on('node_up', (s) => this.events.record('node_up', `${s.node} up (boot ${s.boot})`));
    this.liveness.on('node_unreachable', (s) =>
      this.events.record('node_unreachable', `${s.node} unreachable: silent, calls with it kept`),
    );
    this.liveness.on('node_reachable', (s) =>
      this.events.record('node_reachable', `${s.node} reachable again: reconciling`),
    );
    this.liveness.on('isolated', (cut) =>
      this.events.record(
        'isolated',
        cut ? 'this node is cut off from the cluster: keeping its calls' : 'this node hears the cluster again',
      ),
    );
  }
}

/**
 * Whether a REGISTER refresh need not be written to the mapping table (every
 * node receives each write): the same binding, and the expiry already
 * published still has more than half of the new lifetime left. The
 * published expiry is then never later than the real one, and it lasts
 * until the phone's next refresh: a phone that refreshes after more than
 * half its lifetime is written every time.
 */
export function quietRefresh(
  published: Registration | undefined,
  next: Registration | undefined,
  now: number,
): boolean {
  if (!published || !next) return false;
  const { expires_at: was, ...binding } = published;
  const { expires_at: will, ...nextBinding } = next;
  const keys = new Set([...Object.keys(binding), ...Object.keys(nextBinding)]) as Set<keyof typeof binding>;
  for (const k of keys) if (binding[k] !== nextBinding[k]) return false;
  return was - now > (will - now) / 2;
}
