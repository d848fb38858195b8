// Call control of one call manager: a back-to-back user agent for the phones
// this node controls. A call between two phones has a half on each phone's
// node (the same node for a local call); the halves exchange call signals
// over the cluster bus. Each half decides the media resources its own leg
// needs and asks this node's MRM for them.
//
// This class only wires the parts together and dispatches: SIP methods by
// one table, call signals by another. Each job lives in its own module:
// callSetup (new calls), inCall (requests inside a call), transfer,
// adhocConference, rehoming (lost devices), teardown, callTable, phoneLink
// (SIP towards our phone), peerLink (signals to the other half), mediaPath,
// dtmfRelay.
import type { Logger } from 'pino';
import type { Bus } from '../cluster/bus.ts';
import type { CallDetailRecord } from '../cluster/messages.ts';
import type { DeviceManager } from '../cluster/deviceManager.ts';
import type { Liveness } from '../cluster/liveness.ts';
import type { Subjects } from '../cluster/subjects.ts';
import type { ClusterModel } from '../config/model.ts';
import type { Codec } from '../config/schema.ts';
import type { MediaResourceManager } from '../mrm/mediaResourceManager.ts';
import type { SipRequest } from '../sip/message.ts';
import { parseSdp } from '../sip/sdp.ts';
import type { ServerTransaction, SipStack } from '../sip/transactions.ts';
import type { CallContext, PhoneLines } from './callContext.ts';
import { CallAudit } from './callAudit.ts';
import { AdhocConference } from './adhocConference.ts';
import { CallSetup } from './callSetup.ts';
import { CallTable, type CallView } from './callTable.ts';
import { dialogKeyOf } from './dialog.ts';
import { DtmfRelay } from './dtmfRelay.ts';
import type { HalfCall } from './halfCall.ts';
import { InCall } from './inCall.ts';
import { MediaPath } from './mediaPath.ts';
import { PeerLink } from './peerLink.ts';
import { PhoneLink } from './phoneLink.ts';
import type { Registrar } from './registrar.ts';
import { Rehoming } from './rehoming.ts';
import type { CallSignal, CallSignalReply } from './signals.ts';
import { OPTIONS_ANSWER, notTaken, type TakenMethod } from './sipMethods.ts';
import { Teardown } from './teardown.ts';
import { Transfer } from './transfer.ts';
import type { TrunkPeers } from './trunkPeers.ts';
import { TrunkStats, type TrunkCounts } from './trunkStats.ts';
import { TrunkKeepalive, type PeerView } from './trunkKeepalive.ts';
import { TrunkRegistration, type TrunkRegistrationView } from './trunkRegistration.ts';
import type { SipLadder } from '../sip/ladder.ts';

export type { CallView };

export interface CallControlDeps {
  /** the node's SIP ladder: each half's dialog is bound to its call there */
  ladder?: SipLadder;
  model: ClusterModel;
  node: string;
  bus: Bus;
  subjects: Subjects;
  stack: SipStack;
  registrar: Registrar;
  mrm: MediaResourceManager;
  devices: DeviceManager;
  liveness: Liveness;
  phones: PhoneLines;
  /** host:port this node writes in Contact and From */
  sipAddress: string;
  /** host:port of SIP over TLS (Contact towards TLS phones) */
  sipTlsAddress?: string | undefined;
  /** codecs seen in a phone of this node's SDP (kept, and published for the other nodes) */
  learnCodecs(number: string, codecs: Codec[], from: 'offer' | 'answer' | 'refused'): void;
  /** whether this node controls the phone now (its Call Manager Group) */
  controls(number: string): boolean;
  /** keeps the call detail record of each half that ends */
  record?: (r: CallDetailRecord) => void;
  /** the servers of the trunks this node carries (looked up, kept fresh) */
  trunkPeers: TrunkPeers;
  log: Logger;
}

type SignalOf<Op extends CallSignal['op']> = Extract<CallSignal, { op: Op }>;
/** Signals about an existing half (all but setup and device events). */
type HalfSignal = Exclude<
  CallSignal,
  { op: 'setup' | 'device_dtmf' | 'device_lost' | 'conference_left' | 'audit' | 'conference_roll' }
>;

export class CallControl {
  private readonly c: CallContext;
  private readonly setup: CallSetup;
  private readonly inCall: InCall;
  private readonly rehoming: Rehoming;
  private readonly transfer: Transfer;
  private readonly adhoc: AdhocConference;
  private readonly audit: CallAudit;
  /** outbound registrations of the trunks this node carries that register */
  private readonly registrations: TrunkRegistration[] = [];
  /** OPTIONS keep-alive of the peers of the trunks this node carries */
  private readonly keepalive: TrunkKeepalive;

  /** The handler of each method of the SIP_METHODS table (sipMethods.ts): a new method is a row there and one here. */
  private readonly methods: { [M in TakenMethod]: (tx: ServerTransaction) => void | Promise<void> } = {
    REGISTER: (tx) => this.d.registrar.handle(tx),
    OPTIONS: (tx) => void tx.respond(200, { headers: OPTIONS_ANSWER }),
    INVITE: (tx) => (dialogKeyOf(tx.request) ? this.inCall.onReinvite(tx) : this.setup.onInvite(tx)),
    BYE: (tx) => this.inCall.onBye(tx),
    INFO: (tx) => this.inCall.onInfo(tx),
    REFER: (tx) => this.transfer.onRefer(tx),
  };

  /** And a new call signal one row here. */
  private readonly signals: {
    [Op in HalfSignal['op']]: (h: HalfCall, s: SignalOf<Op>) => CallSignalReply | Promise<CallSignalReply>;
  } = {
    progress: (h, s) => this.setup.progress(h, s.status),
    answer: (h, s) => this.setup.answered(h, s.sdp),
    reject: (h, s) => this.setup.refused(h, s.status, s.reason),
    hangup: async (h, s) => {
      await this.c.teardown.hangup(h, s.reason, true, false);
      return { ok: true };
    },
    reoffer: (h, s) => {
      void this.inCall.reofferToPhone(h, parseSdp(s.sdp));
      return { ok: true };
    },
    reanswer: (h, s) => this.inCall.reanswered(h, s),
    transfer: (h, s) => this.transfer.onTransfer(h, s),
    transfer_result: (h, s) => this.transfer.outcome(h, s.status, s.reason),
    conference: (h, s) => this.adhoc.join(h, s),
    pair: (h, s) => this.adhoc.pair(h, s),
    dtmf: (h, s) => {
      this.c.dtmf.deliver(h, s.digit, s.duration_ms);
      return { ok: true };
    },
  };

  constructor(private readonly d: CallControlDeps) {
    const table = new CallTable((call, callId) => d.ladder?.bind(call, callId));
    const media = new MediaPath({ model: d.model, mrm: d.mrm, log: d.log });
    const phone = new PhoneLink({
      stack: d.stack,
      phones: d.phones,
      table,
      media,
      sipAddress: d.sipAddress,
      sipTlsAddress: d.sipTlsAddress,
      log: d.log,
    });
    const peer = new PeerLink({
      model: d.model,
      node: d.node,
      bus: d.bus,
      subjects: d.subjects,
      mrm: d.mrm,
      table,
      log: d.log,
    });
    const teardown = new Teardown({
      stack: d.stack,
      phones: d.phones,
      mrm: d.mrm,
      table,
      peer,
      log: d.log,
      node: d.node,
      record: (r) => d.record?.(r),
    });
    const dtmf = new DtmfRelay({ stack: d.stack, log: d.log, signal: (h, s) => peer.signal(h, s) });
    const homeOf = (number: string): string => {
      const found = d.devices.lookup(number);
      return found.registered && found.entry.registration
        ? found.entry.node
        : (d.model.phones.get(number)?.node ?? d.node);
    };
    this.keepalive = new TrunkKeepalive({
      stack: d.stack,
      sipAddress: d.sipAddress,
      trunks: () => d.model.trunksOn(d.node),
      servers: d.trunkPeers,
      log: d.log.child({ component: 'trunk' }),
    });
    this.c = {
      ...d,
      table,
      phone,
      peer,
      media,
      teardown,
      dtmf,
      homeOf,
      nodeUp: (n) => d.liveness.isUp(n),
      trunkPeerUp: (t, key) => this.keepalive.up(t, key),
      trunkServers: (t) => d.trunkPeers.list(t),
      trunkStats: new TrunkStats(),
      trunkAt: (from) => d.trunkPeers.trunkAt(from),
    };
    this.setup = new CallSetup(this.c);
    this.inCall = new InCall(this.c);
    this.rehoming = new Rehoming(this.c);
    this.transfer = new Transfer(this.c, this.setup);
    this.adhoc = new AdhocConference(this.c, this.setup);
    this.setup.adhoc = (half, offer) => this.adhoc.start(half, offer);
    this.audit = new CallAudit(this.c);
  }

  start(): void {
    const { stack, liveness, mrm, log } = this.d;
    const { peer, teardown, table, phone } = this.c;
    peer.serve((s) => this.onSignal(s));
    stack.on('request', (tx) => void this.onRequest(tx).catch((err: unknown) => this.failed(tx, err)));
    // 2xx ACKs end the stack's retransmissions; one may carry the answer to a delayed offer.
    stack.on('ack', (req, from) => {
      const h = table.forDialog(req);
      if (
        h?.caller?.delayedOffer &&
        h.dialog &&
        h.dialog.peer.address === from.address &&
        h.dialog.peer.port === from.port
      )
        this.setup.onAck(h, req);
    });
    stack.on('cancel', (inv) => this.inCall.onCancel(inv));
    stack.on('ack_timeout', (inv) => {
      const h = table.forInvite(inv);
      if (h) void teardown.hangup(h, 'the phone never acknowledged the answer', true);
    });
    stack.retransmitted2xx = (res) => phone.reAck(res);
    this.keepalive.start();
    for (const t of this.d.model.trunksOn(this.d.node)) {
      if (!t.register) continue;
      const r = new TrunkRegistration(t, {
        server: () => this.d.trunkPeers.list(t.number)[0],
        stack,
        sipAddress: this.d.sipAddress,
        log: this.d.log.child({ component: 'trunk' }),
      });
      this.registrations.push(r);
      r.start();
    }
    mrm.on(
      'allocation_lost',
      (a, reason) =>
        void this.rehoming.rehome(a, reason).catch((err: unknown) => log.error({ err }, 're-homing failed')),
    );
    // Make before break: a silent device node's replacements are held ready, and given back when it is heard again.
    // (after the liveness sweep that raised it has judged isolation: a node that hears no one is the one cut off, and
    // keeps its own devices for its own new calls rather than holding standbys on them)
    liveness.on('node_unreachable', (s) =>
      queueMicrotask(() => {
        if (!liveness.isolated)
          void this.rehoming.prepare(s.node).catch((err: unknown) => log.error({ err }, 'standby allocation failed'));
      }),
    );
    for (const back of ['node_reachable', 'node_up'] as const) {
      liveness.on(
        back,
        (s) =>
          void this.rehoming.standDown(s.node).catch((err: unknown) => log.error({ err }, 'standby release failed')),
      );
    }
    liveness.on('node_down', (s) => {
      for (const h of table.all()) {
        if (h.peerNode === s.node) void teardown.hangup(h, `node ${s.node} went down`, false);
      }
      void this.adhoc
        .ownerLost(s.node)
        .catch((err: unknown) => log.error({ err }, 'ad hoc conference takeover failed'));
    });
  }

  /** Ends every call (BYE to the phones) before the SIP stack goes away. */
  async stop(): Promise<void> {
    this.c.peer.stop();
    for (const r of this.registrations) r.stop(true);
    this.keepalive.stop();
    await Promise.all(this.c.table.all().map((h) => this.c.teardown.hangup(h, 'call manager stopping', true)));
  }

  /**
   * After a silence between this node and `node` (it was unreachable, or this
   * node was cut off): ends the halves whose far half `node` no longer has.
   */
  auditWith(node: string, reason: string): Promise<number> {
    return this.audit.with(node, reason);
  }

  /** Rooms of ad hoc conferences owned elsewhere whose roll this node keeps (it takes one over if its owner dies). */
  adhocRollCopies(): string[] {
    return this.adhoc.copies;
  }

  /** The halves of calls this node holds (with their inserts and allocation traces). */
  halves(): readonly HalfCall[] {
    return this.c.table.all();
  }

  calls(): CallView[] {
    return this.c.table.views();
  }

  /** How this node's keep-alive sees a trunk's peers. */
  /** Calls through a trunk this node carries since start, and the failures of calls out by reason. */
  trunkCounts(trunk: string): TrunkCounts {
    return this.c.trunkStats.view(trunk);
  }

  trunkPeers(trunk: string): PeerView[] {
    return this.keepalive.view(trunk);
  }

  /** The state of this node's trunk registrations. */
  trunkRegistrations(): TrunkRegistrationView[] {
    return this.registrations.map((r) => r.view());
  }

  /** call setups under way on this node (admission control) */
  get setupsInProgress(): number {
    return this.setup.setupsInProgress;
  }

  /** Whether an in-dialog request names a dialog of this node (the SIP gate asks before keeping any state). */
  knowsDialog(req: SipRequest): boolean {
    return this.c.table.forDialog(req) !== undefined;
  }

  /** in-dialog requests refused because they came from someone other than the dialog's peer */
  get refusedInDialog(): number {
    return this.c.phone.refusedInDialog;
  }

  private async onRequest(tx: ServerTransaction): Promise<void> {
    const method = tx.request.method;
    if (Object.hasOwn(this.methods, method)) return this.methods[method as TakenMethod](tx);
    const { status, headers } = notTaken(method);
    tx.respond(status, { headers });
  }

  private async onSignal(s: CallSignal): Promise<CallSignalReply> {
    if (s.op === 'setup') return s.replaces ? this.transfer.onReplacingSetup(s, s.replaces) : this.setup.onSetup(s);
    if (s.op === 'conference_left') return this.adhoc.left(s);
    if (s.op === 'audit') return this.audit.answer(s);
    if (s.op === 'conference_roll') return this.adhoc.roll(s);
    if (s.op === 'device_dtmf') return this.c.dtmf.fromDevice(s, this.c.table.all());
    if (s.op === 'device_lost') {
      // Re-homed like an allocation on a dead node (allocation_lost).
      this.c.mrm.lost(s.allocation, s.reason);
      return { ok: true };
    }
    const h = this.c.table.get(`${s.call}/${s.to}`);
    if (!h || h.state === 'ended') return { ok: false, status: 481, reason: 'no such call' };
    const handle = this.signals[s.op] as (h: HalfCall, s: HalfSignal) => CallSignalReply | Promise<CallSignalReply>;
    return handle(h, s);
  }

  private failed(tx: ServerTransaction, err: unknown): void {
    this.d.log.error({ err, method: tx.request.method }, 'SIP request handling failed');
    tx.respond(500);
  }
}
