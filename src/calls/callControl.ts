// Call control of one call manager: a back-to-back user agent for the phones
// this node controls. A call between two phones has a half on each phone's
// node (the same node for a local call); the halves exchange call signals
// over the cluster bus. Each half decides the media resources its own leg
// needs and asks this node's MRM for them.
import { randomUUID } from 'node:crypto';
import type { SessionDescription } from 'sdp-transform';
import type { Logger } from 'pino';
import { claimedBy, type Bus, type BusMessage, type Subscription } from '../cluster/bus.ts';
import type { DeviceManager } from '../cluster/deviceManager.ts';
import type { Liveness } from '../cluster/liveness.ts';
import { encode, parseMessage } from '../cluster/messages.ts';
import { parsePid } from '../cluster/pid.ts';
import type { Subjects } from '../cluster/subjects.ts';
import type { ClusterModel, PhoneSpec, ResolvedMrgl } from '../config/model.ts';
import type { MediaResourceType } from '../config/schema.ts';
import type { PhoneProcess } from '../devices/phoneProcess.ts';
import type { Allocation, MediaResourceManager } from '../mrm/mediaResourceManager.ts';
import { parseNameAddr, parseUri } from '../sip/grammar.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import { SdpError, answerDirection, audioOf, parseSdp, withDirection, writeSdp, type AudioInfo } from '../sip/sdp.ts';
import type { ServerTransaction, SipStack } from '../sip/transactions.ts';
import type { SipPeer } from '../sip/transport.ts';
import { Dialog, dialogKeyOf } from './dialog.ts';
import { HalfCall, type Insert } from './halfCall.ts';
import { DtmfRelay, dtmfFromInfo } from './dtmfRelay.ts';
import { MEDIA_CODECS } from '../media/codec.ts';
import { MediaPath, NoResource, key } from './mediaPath.ts';
import { calleeNeedsMtp, callerNeeds, dtmfOf, type DtmfMethod } from './mediaPlan.ts';
import { MRGL_HEADER, type Registrar } from './registrar.ts';
import { CallSignal, CallSignalReply, type OutgoingSignal } from './signals.ts';

import { ALLOW } from './sipAuthenticator.ts';
/** methods we know but do not take */
const NOT_ALLOWED = new Set(['SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'MESSAGE', 'REFER', 'UPDATE', 'PRACK']);

export interface CallControlDeps {
  model: ClusterModel;
  node: string;
  bus: Bus;
  subjects: Subjects;
  stack: SipStack;
  registrar: Registrar;
  mrm: MediaResourceManager;
  devices: DeviceManager;
  liveness: Liveness;
  phones: ReadonlyMap<string, PhoneProcess>;
  /** host:port this node writes in Contact and From */
  sipAddress: string;
  log: Logger;
}

export interface CallView {
  call: string;
  role: 'caller' | 'callee';
  phone: string;
  far: string;
  peer_node: string | null;
  state: string;
  held: boolean;
  holding: boolean;
  since: number;
  resources: Array<{
    type: MediaResourceType;
    resource: string;
    node: string;
    allocation: string;
    why: string;
    /** the device's RTP addresses towards the phone and towards the far end (null: no media) */
    phone_side: string | null;
    far_side: string | null;
  }>;
}

type SdpBody = { type: string; data: Buffer };
/** An SDP body for our phone (always through HalfCall.forPhone, which gives it the dialog's origin). */
const sdpBody = (sdp: SessionDescription): SdpBody => ({ type: 'application/sdp', data: writeSdp(sdp) });

export class CallControl {
  private readonly halves = new Map<string, HalfCall>();
  private readonly byDialog = new Map<string, HalfCall>();
  private readonly byInvite = new Map<ServerTransaction, HalfCall>();
  private readonly byCallId = new Map<string, HalfCall>();
  private sub: Subscription | undefined;
  private readonly contact: string;
  private readonly media: MediaPath;
  private readonly dtmf: DtmfRelay;

  constructor(private readonly d: CallControlDeps) {
    this.contact = `sip:tandem@${d.sipAddress}`;
    this.media = new MediaPath({ model: d.model, mrm: d.mrm, log: d.log });
    this.dtmf = new DtmfRelay({ mrm: d.mrm, stack: d.stack, log: d.log, signal: (h, s) => this.signal(h, s) });
  }

  start(): void {
    const { stack, bus, subjects, node, liveness } = this.d;
    this.sub = bus.serve(subjects.calls(node), (m) => this.onSignal(m));
    stack.on('request', (tx) => void this.onRequest(tx).catch((err: unknown) => this.failed(tx, err)));
    stack.on('ack', () => undefined); // 2xx ACKs end the stack's retransmissions; nothing else to do
    stack.on('cancel', (inv) => this.onCancel(inv));
    stack.on('ack_timeout', (inv) => {
      const h = this.byInvite.get(inv);
      if (h) void this.hangup(h, 'the phone never acknowledged the answer', true);
    });
    stack.retransmitted2xx = (res) => this.reAck(res);
    this.d.mrm.on('allocation_lost', (a, reason) => void this.rehome(a, reason).catch((err: unknown) => this.d.log.error({ err }, 're-homing failed')));
    liveness.on('node_down', (s) => {
      for (const h of [...this.halves.values()]) {
        if (h.peerNode === s.node) void this.hangup(h, `node ${s.node} went down`, false);
      }
    });
  }

  /** Ends every call (BYE to the phones) before the SIP stack goes away. */
  async stop(): Promise<void> {
    this.sub?.unsubscribe();
    await Promise.all([...this.halves.values()].map((h) => this.hangup(h, 'call manager stopping', true)));
  }

  calls(): CallView[] {
    return [...this.halves.values()].map((h) => ({
      call: h.call,
      role: h.role,
      phone: h.phone.number,
      far: h.far,
      peer_node: h.peerNode ?? null,
      state: h.state,
      held: h.held,
      holding: h.holding,
      since: h.since,
      resources: h.allocations().map((a) => {
        const ins = h.inserts.find((i) => i.allocation.id === a.id);
        return {
          type: a.type,
          resource: a.resource,
          node: a.node,
          allocation: a.id,
          why: ins?.why ?? 'music on hold',
          phone_side: ins?.media ? key(ins.phoneSide) : null,
          far_side: ins?.media ? key(ins.farSide) : null,
        };
      }),
    }));
  }

  // ---- SIP from the phones -------------------------------------------------

  private async onRequest(tx: ServerTransaction): Promise<void> {
    const req = tx.request;
    switch (req.method) {
      case 'REGISTER':
        return this.d.registrar.handle(tx);
      case 'OPTIONS':
        return void tx.respond(200, { headers: [['allow', ALLOW], ['accept', 'application/sdp']] });
      case 'INVITE':
        return dialogKeyOf(req) ? this.onReinvite(tx) : this.onInvite(tx);
      case 'BYE':
        return this.onBye(tx);
      case 'INFO': {
        const h = this.inDialog(tx);
        if (!h) return;
        tx.respond(200);
        const d = dtmfFromInfo(tx.request);
        if (d) this.dtmf.fromPhone(h, d.digit, d.durationMs);
        return;
      }
      default:
        if (NOT_ALLOWED.has(req.method)) return void tx.respond(405, { headers: [['allow', ALLOW]] });
        return void tx.respond(501, { headers: [['allow', ALLOW]] });
    }
  }

  /**
   * Our Contact for a dialog: with transport=tcp when the phone talks TCP, so
   * its in-dialog requests come over the same connection (RFC 3263 would
   * send them over UDP otherwise) and pass the dialog-peer check.
   */
  private contactFor(peer: { transport: 'UDP' | 'TCP' }): string {
    return peer.transport === 'TCP' ? `${this.contact};transport=tcp` : this.contact;
  }

  /** Whether an in-dialog request names a dialog of this node (the SIP gate asks before keeping any state). */
  knowsDialog(req: SipRequest): boolean {
    const key = dialogKeyOf(req);
    return key !== undefined && this.byDialog.has(key);
  }

  /**
   * The call an in-dialog request belongs to, if it comes from the dialog's
   * peer: Call-ID and tags travel in clear, so a stranger who saw them must
   * not be able to hold or end the call.
   */
  private inDialog(tx: ServerTransaction): HalfCall | undefined {
    const key = dialogKeyOf(tx.request);
    const h = key ? this.byDialog.get(key) : undefined;
    if (!h) {
      tx.respond(481);
      return undefined;
    }
    const peer = h.dialog?.peer;
    const reg = this.d.phones.get(h.phone.number)?.snapshot().registration;
    const same = (a: { address: string; port: number } | undefined) => a !== undefined && a.address === tx.peer.address && a.port === tx.peer.port;
    if (!same(peer) && !same(reg)) {
      this.refusedInDialog++;
      this.d.log.warn({ call: h.call, method: tx.request.method, from: `${tx.peer.address}:${tx.peer.port}` }, 'in-dialog request from a stranger refused');
      tx.respond(403, { reason: 'Forbidden (not from the dialog peer)' });
      return undefined;
    }
    return h;
  }

  /** in-dialog requests refused because they came from someone other than the dialog's peer */
  refusedInDialog = 0;

  private async onInvite(tx: ServerTransaction): Promise<void> {
    const { model, log } = this.d;
    const req = tx.request;
    const fromUser = parseUri(parseNameAddr(req.headers.get('from')!)?.uri ?? '')?.user;
    const caller = fromUser ? model.phones.get(fromUser) : undefined;
    if (!caller || caller.node !== this.d.node) return void tx.respond(403, { reason: `Forbidden (${fromUser ?? 'caller'} is not a phone of ${this.d.node})` });
    const proc = this.d.phones.get(caller.number)!;
    const reg = proc.snapshot().registration;
    if (!reg || reg.address !== tx.peer.address || reg.port !== tx.peer.port) {
      return void tx.respond(403, { reason: `Forbidden (${caller.number} is not registered from ${tx.peer.address}:${tx.peer.port})` });
    }
    // The gate checked the Digest answer (sip.authenticate_invites) before any state was kept.
    if (model.config.sip.authenticate_invites && tx.authUser !== caller.number) {
      return void tx.respond(403, { reason: 'Forbidden (not authenticated)' });
    }
    tx.respond(100);
    let offer: SessionDescription;
    try {
      if (!req.body.length) return void tx.respond(488, { reason: 'Not Acceptable Here (an INVITE without SDP offer is not supported)' });
      offer = parseSdp(req.body);
      audioOf(offer);
    } catch (err) {
      return void tx.respond(err instanceof SdpError ? 488 : 400, { reason: `Not Acceptable Here (${(err as Error).message})` });
    }
    const dialled = parseUri(req.uri)?.user ?? '';
    const conference = model.isConferenceNumber(dialled);
    const callee = model.phones.get(dialled);
    if (!conference && !callee) return void tx.respond(404, { reason: `Not Found (no number ${dialled})` });
    const mrgl = this.callMrgl(req, caller, proc.snapshot().mrgl);
    const call = randomUUID();
    const half = new HalfCall(call, 'caller', caller, dialled, conference ? undefined : callee!.node, mrgl);
    half.invite = tx;
    half.dialog = Dialog.forIncoming(req, tx.peer, this.contactFor(tx.peer));
    if (!(await this.seize(half))) return void tx.respond(486, { reason: `Busy Here (${caller.number} is already in a call)` });
    this.track(half);
    this.byInvite.set(tx, half);
    log.info({ call, caller: caller.number, dialled, mrgl: mrgl.mrgl, mrgl_source: mrgl.source }, 'call attempt');
    half.notePhone(audioOf(offer));
    try {
      if (conference) return await this.joinConference(half, offer);
      const entry = this.d.devices.lookup(dialled);
      const registration = entry.registered ? entry.entry.registration : undefined;
      if (!registration || registration.expires_at < Date.now()) {
        return this.fail(half, 480, `Temporarily Unavailable (${dialled} is not registered)`);
      }
      const needs = callerNeeds(caller, audioOf(offer), callee!);
      // The MTP converts DTMF when the two phones' methods differ.
      const dtmf: [DtmfMethod, DtmfMethod] = [dtmfOf(audioOf(offer))[0]!, callee!.dtmf.includes('rfc4733') ? 'rfc4733' : 'sip_info'];
      if (needs.mtp) await this.media.insert(half, 'mtp', needs.mtp, { optional: !caller.mtpRequired, dtmf });
      if (needs.transcode) {
        const { callerCodec, calleeCodecs } = needs.transcode;
        await this.media.insert(half, 'transcoder', `no common codec: ${caller.number} offers ${audioOf(offer).codecs.join(',')}, ${dialled} takes ${calleeCodecs.join(',')}`, {
          requirement: { codecs: [callerCodec, calleeCodecs[0]!] },
          codecs: [callerCodec, calleeCodecs[0]!],
        });
        const ins = half.inserts[half.inserts.length - 1]!;
        ins.phoneCodecs = [callerCodec];
        ins.farCodecs = calleeCodecs;
      }
      const reply = await this.signal(half, {
        op: 'setup',
        call,
        caller: { number: caller.number, node: this.d.node, ...(parseNameAddr(req.headers.get('from')!)?.display ? { display: parseNameAddr(req.headers.get('from')!)!.display! } : {}) },
        callee: dialled,
        offer: writeSdp(this.media.farView(half, offer)).toString(),
      });
      if (!reply.ok) return this.fail(half, reply.status, reply.reason);
      half.state = 'ringing';
    } catch (err) {
      if (err instanceof NoResource) return this.fail(half, 503, `Service Unavailable (${err.message})`);
      throw err;
    }
  }

  private async joinConference(half: HalfCall, offer: SessionDescription): Promise<void> {
    const a = audioOf(offer);
    // The bridge takes G.711 (cheapest to mix) when the phone offers it, else Opus.
    const codec = a.codecs.find((c) => c === 'PCMU' || c === 'PCMA') ?? a.codecs.find((c) => MEDIA_CODECS.includes(c)) ?? a.codecs[0]!;
    // A room already running on some bridge of the cluster: join it there.
    const room = this.d.devices.lookup(`conf-${half.far}`);
    const pinned = room.registered ? parsePid(room.entry.pid)?.name : undefined;
    const ins = (await this.media.insert(half, 'conference_bridge', `meet-me conference ${half.far}`, {
      ...(pinned ? { preferred: { device: pinned, group: `(conference ${half.far})` } } : {}),
      requirement: { codecs: [codec] },
      codecs: [codec, undefined],
      room: half.far,
    }))!;
    const answer = half.own(ins.phoneSide, [codec], answerDirection(a.direction));
    half.state = 'up';
    half.invite!.respond(200, this.answerOpts(half, sdpBody(half.forPhone(answer))));
    this.d.log.info({ call: half.call, phone: half.phone.number, conference: half.far, bridge: ins.allocation.resource }, 'joined conference');
  }

  private async onReinvite(tx: ServerTransaction): Promise<void> {
    const h = this.inDialog(tx);
    if (!h) return;
    if (h.state !== 'up') return void tx.respond(491);
    if (h.pendingReinvite) return void tx.respond(491);
    let offer: SessionDescription;
    try {
      offer = parseSdp(tx.request.body);
      audioOf(offer);
    } catch (err) {
      return void tx.respond(488, { reason: `Not Acceptable Here (${(err as Error).message})` });
    }
    const dir = audioOf(offer).direction;
    h.holding = dir === 'sendonly' || dir === 'inactive';
    if (!h.peerNode) {
      // Conference: the bridge answers for itself.
      const ins = h.inserts[0]!;
      return void tx.respond(200, this.answerOpts(h, sdpBody(h.forPhone(h.own(ins.phoneSide, audioOf(offer).codecs.slice(0, 1), answerDirection(dir))))));
    }
    h.pendingReinvite = tx;
    const reply = await this.signal(h, { op: 'reoffer', call: h.call, sdp: writeSdp(this.media.farView(h, offer)).toString() });
    if (!reply.ok) {
      h.pendingReinvite = undefined;
      tx.respond(reply.status, { reason: reply.reason });
    }
  }

  private async onBye(tx: ServerTransaction): Promise<void> {
    const h = this.inDialog(tx);
    if (!h) return;
    const done = this.hangup(h, `${h.phone.number} hung up`, false, true);
    tx.respond(200);
    await done;
  }

  private onCancel(inv: ServerTransaction): void {
    const h = this.byInvite.get(inv);
    if (!h || h.state === 'up') return;
    inv.respond(487);
    void this.hangup(h, `${h.phone.number} cancelled`, false, true);
  }

  // ---- signals from the other half ----------------------------------------

  private async onSignal(m: BusMessage): Promise<Uint8Array> {
    const p = parseMessage(CallSignal, m.data);
    if (!p.ok) {
      this.d.log.warn({ error: p.error }, 'dropped malformed call signal');
      return encode({ ok: false, status: 400, reason: p.error.slice(0, 200) });
    }
    if (!this.fromPeer(m, p.value)) return encode({ ok: false, status: 403, reason: 'not the peer of this call' });
    try {
      return encode(await this.handleSignal(p.value));
    } catch (err) {
      this.d.log.error({ err, signal: p.value.op }, 'call signal failed');
      return encode({ ok: false, status: 500, reason: 'call signal failed' });
    }
  }

  /** A call signal must come from the node of the call's other half (or, for device events, the device's node). */
  private fromPeer(m: BusMessage, s: CallSignal): boolean {
    if (s.op === 'setup') return claimedBy(m, s.caller.node);
    if (s.op === 'device_dtmf') {
      const a = this.d.mrm.get(s.allocation);
      return a === undefined || claimedBy(m, a.node);
    }
    const h = this.halves.get(`${s.call}/${s.to}`);
    return h === undefined || claimedBy(m, h.peerNode ?? this.d.node);
  }

  private async handleSignal(s: CallSignal): Promise<CallSignalReply> {
    if (s.op === 'setup') return this.onSetup(s);
    if (s.op === 'device_dtmf') return this.dtmf.fromDevice(s, [...this.halves.values()]);
    const h = this.halves.get(`${s.call}/${s.to}`);
    if (!h || h.state === 'ended') return { ok: false, status: 481, reason: 'no such call' };
    switch (s.op) {
      case 'progress':
        if (h.state !== 'up') h.invite?.respond(s.status, this.answerOpts(h));
        return { ok: true };
      case 'answer': {
        const sdp = this.media.phoneView(h, parseSdp(s.sdp));
        h.state = 'up';
        h.invite?.respond(200, this.answerOpts(h, sdpBody(h.forPhone(sdp))));
        this.d.log.info({ call: h.call, caller: h.phone.number, callee: h.far }, 'call answered');
        return { ok: true };
      }
      case 'reject':
        await this.fail(h, s.status, s.reason, false);
        return { ok: true };
      case 'hangup':
        await this.hangup(h, s.reason, true, false);
        return { ok: true };
      case 'reoffer':
        void this.reofferToPhone(h, parseSdp(s.sdp));
        return { ok: true };
      case 'dtmf':
        this.dtmf.deliver(h, s.digit, s.duration_ms);
        return { ok: true };
      case 'reanswer': {
        const tx = h.pendingReinvite;
        h.pendingReinvite = undefined;
        if (!tx && h.selfReoffer) {
          // The answer to our own re-offer (a replaced device): learn where the far end receives.
          h.selfReoffer = false;
          if (s.sdp) this.media.phoneView(h, parseSdp(s.sdp));
          return { ok: true };
        }
        if (!tx) return { ok: false, status: 481, reason: 'no re-INVITE pending' };
        if (s.status >= 300 || !s.sdp) tx.respond(s.status >= 300 ? s.status : 500);
        else tx.respond(200, this.answerOpts(h, sdpBody(h.forPhone(this.media.phoneView(h, parseSdp(s.sdp))))));
        return { ok: true };
      }
    }
  }

  private async onSetup(s: Extract<CallSignal, { op: 'setup' }>): Promise<CallSignalReply> {
    const { model } = this.d;
    const callee = model.phones.get(s.callee);
    if (!callee || callee.node !== this.d.node) return { ok: false, status: 404, reason: `Not Found (${s.callee} is not on ${this.d.node})` };
    const proc = this.d.phones.get(callee.number)!;
    const st = proc.snapshot();
    if (!st.registration) return { ok: false, status: 480, reason: `Temporarily Unavailable (${callee.number} is not registered)` };
    const half = new HalfCall(s.call, 'callee', callee, s.caller.number, s.caller.node, model.resolveMrgl(callee, { registration: st.mrgl }));
    if (!(await this.seize(half))) return { ok: false, status: 486, reason: `Busy Here (${callee.number} is in a call)` };
    this.track(half);
    let offer: SessionDescription;
    try {
      offer = parseSdp(s.offer);
      const mtp = calleeNeedsMtp(callee);
      if (mtp) await this.media.insert(half, 'mtp', mtp, { dtmf: [callee.dtmf.includes('rfc4733') ? 'rfc4733' : 'sip_info', 'rfc4733'] });
    } catch (err) {
      await this.cleanup(half, 'setup failed');
      if (err instanceof NoResource) return { ok: false, status: 503, reason: `Service Unavailable (${err.message})` };
      return { ok: false, status: 488, reason: `Not Acceptable Here (${(err as Error).message})` };
    }
    const host = this.d.sipAddress;
    const dialog = Dialog.outgoing({
      fromUri: `sip:${s.caller.number}@${host}`,
      ...(s.caller.display ? { fromDisplay: s.caller.display } : {}),
      toUri: `sip:${callee.number}@${host}`,
      target: st.registration.contact,
      peer: { transport: st.registration.transport, address: st.registration.address, port: st.registration.port },
      contact: this.contactFor(st.registration),
      callIdHost: host.split(':')[0]!,
    });
    half.dialog = dialog;
    this.byCallId.set(dialog.callId, half);
    const invite = dialog.request('INVITE', sdpBody(half.forPhone(this.media.phoneView(half, offer))), [['allow', ALLOW]]);
    half.outInvite = invite;
    half.state = 'ringing';
    half.ringTimer = setTimeout(() => {
      if (half.state !== 'up' && half.state !== 'ended') {
        half.cancelWanted = true;
        if (half.gotProvisional) this.d.stack.cancel(invite, dialog.peer);
        void this.signal(half, { op: 'reject', call: half.call, status: 480, reason: 'Temporarily Unavailable (no answer)' });
        void this.cleanup(half, 'no answer');
      }
    }, model.config.sip.ring_timeout_ms);
    this.d.stack.request(invite, dialog.peer, (res) => void this.onInviteResponse(half, res).catch((err: unknown) => this.d.log.error({ err }, 'INVITE response handling failed')));
    return { ok: true };
  }

  private async onInviteResponse(h: HalfCall, res: SipResponse): Promise<void> {
    const dialog = h.dialog!;
    if (res.status < 200) {
      const first = !h.gotProvisional;
      h.gotProvisional = true;
      if (h.cancelWanted && first) this.d.stack.cancel(h.outInvite!, dialog.peer);
      else if (res.status >= 180 && h.state !== 'ended') await this.signal(h, { op: 'progress', call: h.call, status: res.status });
      return;
    }
    clearTimeout(h.ringTimer);
    if (res.status < 300) {
      dialog.learn(res);
      this.d.stack.request(dialog.ackFor(res), dialog.peer, () => undefined);
      if (h.cancelWanted || h.state === 'ended') {
        this.d.stack.request(dialog.request('BYE'), dialog.peer, () => undefined);
        return;
      }
      this.byDialog.set(dialog.key, h);
      h.state = 'up';
      let answer: SessionDescription;
      try {
        answer = parseSdp(res.body);
      } catch {
        await this.hangup(h, 'the phone answered without usable SDP', true);
        return;
      }
      await this.signal(h, { op: 'answer', call: h.call, sdp: writeSdp(this.media.farView(h, answer)).toString() });
      return;
    }
    if (h.state === 'ended') return;
    if (!h.cancelWanted) await this.signal(h, { op: 'reject', call: h.call, status: res.status, reason: res.reason || 'rejected' });
    await this.cleanup(h, `phone answered ${res.status}`);
  }

  /** The far end re-offers: re-INVITE our phone, report its answer. */
  private async reofferToPhone(h: HalfCall, offer: SessionDescription): Promise<void> {
    const dir = audioOf(offer).direction;
    const nowHeld = dir === 'sendonly' || dir === 'inactive';
    let toPhone: SessionDescription | undefined;
    if (nowHeld && !h.held) {
      h.held = true;
      toPhone = await this.media.startMusicOnHold(h);
    } else if (!nowHeld && h.held) {
      h.held = false;
      if (h.moh) await this.d.mrm.release(h.moh.id);
      h.moh = undefined;
    }
    const onHoldMusic = toPhone !== undefined;
    const dialog = h.dialog!;
    const req = dialog.request('INVITE', sdpBody(h.forPhone(toPhone ?? this.media.phoneView(h, offer))), [['allow', ALLOW]]);
    this.d.stack.request(req, dialog.peer, (res) => {
      if (res.status < 200) return;
      if (res.status >= 300) return void this.signal(h, { op: 'reanswer', call: h.call, status: res.status });
      this.d.stack.request(dialog.ackFor(res), dialog.peer, () => undefined);
      let sdp: string | undefined;
      try {
        const answer = parseSdp(res.body);
        if (onHoldMusic) {
          // The phone now listens to the MOH stream; the holder is answered "inactive".
          const a = audioOf(answer);
          h.notePhone(a);
          if (h.moh) void this.d.mrm.media(h.moh.id, { legs: [{ remote: { address: a.address, port: a.port } }] }).catch(() => undefined);
          sdp = writeSdp(withDirection(h.toFar(answer), 'inactive')).toString();
        } else sdp = writeSdp(this.media.farView(h, answer)).toString();
      } catch {
        sdp = undefined;
      }
      void this.signal(h, { op: 'reanswer', call: h.call, status: sdp ? 200 : 488, ...(sdp ? { sdp } : {}) });
    });
  }

  // ---- shared steps --------------------------------------------------------

  /** Sends a signal to the other half of the call; an unreachable node reads as 503. */
  private async signal(h: HalfCall, s: OutgoingSignal): Promise<CallSignalReply> {
    if (!h.peerNode) return { ok: false, status: 500, reason: 'no other half' };
    // A signal from a half goes to the other role's half (same node or not).
    const msg = s.op === 'setup' ? s : { ...s, to: h.role === 'caller' ? 'callee' : 'caller' };
    try {
      const raw = await this.d.bus.request(this.d.subjects.calls(h.peerNode), encode(msg), this.d.model.config.cluster.request_timeout_ms * 4);
      const r = parseMessage(CallSignalReply, raw);
      return r.ok ? r.value : { ok: false, status: 500, reason: `malformed reply from ${h.peerNode}` };
    } catch (err) {
      this.d.log.warn({ call: h.call, to: h.peerNode, signal: s.op, err: (err as Error).message }, 'call signal not delivered');
      return { ok: false, status: 503, reason: `Service Unavailable (${h.peerNode} unreachable)` };
    }
  }

  /**
   * A device in one of our calls was lost with its node: take the next one
   * the MRGL offers, wire it in, and move the media to it (re-INVITE the
   * phone when the phone-facing address changed, re-offer to the far end when
   * the far-facing one did). The call stays up.
   */
  private async rehome(lost: Allocation, reason: string): Promise<void> {
    const held = [...this.halves.values()].find((x) => x.moh?.id === lost.id);
    if (held) return this.rehomeMusicOnHold(held, reason);
    const h = [...this.halves.values()].find((x) => x.inserts.some((i) => i.allocation.id === lost.id));
    if (!h || h.state === 'ended') return;
    const at = h.inserts.findIndex((i) => i.allocation.id === lost.id);
    const old = h.inserts[at]!;
    this.d.log.warn({ call: h.call, type: old.type, resource: old.allocation.resource, reason }, 'media resource lost: re-homing the call');
    let ins: Insert | undefined;
    try {
      ins = await this.media.openInsert(h, old.type, old.why, { ...old.ask, preferred: undefined }, at);
    } catch (err) {
      // A call shown as up with no media is worse than an ended one.
      this.d.log.error({ call: h.call, type: old.type, err: (err as Error).message }, 'no replacement device: ending the call');
      return this.hangup(h, `${old.type} lost (${reason}) and no replacement`, false);
    }
    if (!ins) return this.hangup(h, `${old.type} lost (${reason}) and no replacement`, false);
    if (h.state !== 'up') return;
    if (old.ask.codecs) {
      ins.phoneCodecs = old.phoneCodecs;
      ins.farCodecs = old.farCodecs;
    }
    h.inserts[at] = ins;
    this.d.log.info({ call: h.call, type: ins.type, resource: ins.allocation.resource, node: ins.allocation.node }, 'call re-homed');
    if (at === 0) {
      const offer =
        ins.legs === 1 || !h.lastFarSdp
          ? h.own(ins.phoneSide, h.phoneAudio?.codecs.slice(0, 1) ?? ['PCMU'], 'sendrecv')
          : h.toPhone(h.lastFarSdp);
      this.inviteOwnPhone(h, offer);
    }
    if (at === h.inserts.length - 1 && ins.legs === 2 && h.peerNode && h.lastPhoneSdp) {
      h.selfReoffer = true;
      await this.signal(h, { op: 'reoffer', call: h.call, sdp: writeSdp(h.toFar(h.lastPhoneSdp)).toString() });
    }
  }

  /** The MOH device of a held phone was lost with its node: the next MOH device of its MRGL plays on. */
  private async rehomeMusicOnHold(h: HalfCall, reason: string): Promise<void> {
    this.d.log.warn({ call: h.call, phone: h.phone.number, resource: h.moh?.resource, reason }, 'music on hold lost: re-homing');
    h.moh = undefined;
    if (!h.held || h.state !== 'up') return;
    const offer = await this.media.startMusicOnHold(h);
    if (!offer) return;
    const moh = h.moh as Allocation | undefined;
    this.inviteOwnPhone(h, offer, (a) => {
      if (moh) void this.d.mrm.media(moh.id, { legs: [{ remote: { address: a.address, port: a.port } }] }).catch(() => undefined);
    });
  }

  /** A re-INVITE of our own to this leg's phone (new media address); learns where the phone now receives. */
  private inviteOwnPhone(h: HalfCall, offer: SessionDescription, answered?: (a: AudioInfo) => void): void {
    const dialog = h.dialog;
    if (!dialog) return;
    this.d.stack.request(dialog.request('INVITE', sdpBody(h.forPhone(offer)), [['allow', ALLOW]]), dialog.peer, (res) => {
      if (res.status < 200) return;
      if (res.status >= 300) return void this.d.log.warn({ call: h.call, status: res.status }, 'phone refused the new media address');
      this.d.stack.request(dialog.ackFor(res), dialog.peer, () => undefined);
      try {
        const a = audioOf(parseSdp(res.body));
        h.notePhone(a);
        answered?.(a);
        void this.media.syncMedia(h);
      } catch {
        this.d.log.warn({ call: h.call }, 'phone answered the new media address without usable SDP');
      }
    });
  }

  /** The caller's MRGL for this call: the INVITE's header (if known), else what ClusterModel.resolveMrgl says. */
  private callMrgl(req: SipRequest, phone: PhoneSpec, registered: string | undefined): ResolvedMrgl {
    let fromHeader = req.headers.get(MRGL_HEADER)?.trim() || undefined;
    if (fromHeader && !this.d.model.mrgls.has(fromHeader)) {
      this.d.log.warn({ phone: phone.number, mrgl: fromHeader }, `ignoring unknown MRGL in ${MRGL_HEADER}`);
      fromHeader = undefined;
    }
    return this.d.model.resolveMrgl(phone, { request: fromHeader, registration: registered });
  }

  private answerOpts(h: HalfCall, body?: SdpBody) {
    const headers: Array<[string, string]> = [['contact', `<${h.dialog!.contact}>`], ['allow', ALLOW]];
    if (body) headers.push(['content-type', body.type]);
    return { toTag: h.dialog!.localTag, headers, ...(body ? { body: body.data } : {}) };
  }

  private async seize(h: HalfCall): Promise<boolean> {
    const r = await this.d.phones.get(h.phone.number)!.deliver({ op: 'seize', call: h.key });
    return 'seized' in r && r.seized;
  }

  private track(h: HalfCall): void {
    this.halves.set(h.key, h);
    if (h.role === 'caller' && h.dialog) this.byDialog.set(h.dialog.key, h);
  }

  /** Ends a call that never got up, answering the caller's INVITE. */
  private async fail(h: HalfCall, status: number, reason: string, tellPeer = true): Promise<void> {
    if (h.state === 'ended') return;
    const wasRinging = h.state === 'ringing';
    const done = this.cleanup(h, reason);
    h.invite?.respond(status, { reason, toTag: h.dialog?.localTag });
    if (tellPeer && wasRinging) await this.signal(h, { op: 'hangup', call: h.call, reason });
    await done;
  }

  /**
   * Ends this half: the phone gets a BYE (or its INVITE an error, or our
   * INVITE a CANCEL) unless it is the one that hung up; the other half is
   * told unless it is the one that asked.
   */
  private async hangup(h: HalfCall, reason: string, byPeer: boolean, byPhone = false): Promise<void> {
    if (h.state === 'ended') return;
    const dialog = h.dialog;
    if (!byPhone && dialog) {
      if (h.state === 'up') this.d.stack.request(dialog.request('BYE'), dialog.peer, () => undefined);
      else if (h.role === 'caller') h.invite?.respond(byPeer ? 487 : 503, { toTag: dialog.localTag });
      else {
        h.cancelWanted = true;
        if (h.gotProvisional && h.outInvite) this.d.stack.cancel(h.outInvite, dialog.peer);
      }
    }
    const done = this.cleanup(h, reason);
    if (!byPeer && h.peerNode) await this.signal(h, { op: 'hangup', call: h.call, reason });
    await done;
  }

  private async cleanup(h: HalfCall, reason: string): Promise<void> {
    if (h.state === 'ended') return;
    const wasUp = h.state === 'up';
    h.state = 'ended';
    clearTimeout(h.ringTimer);
    this.halves.delete(h.key);
    if (h.dialog) {
      this.byDialog.delete(h.dialog.key);
      this.byCallId.delete(h.dialog.callId);
    }
    if (h.invite) this.byInvite.delete(h.invite);
    // The line is free before anything is awaited: a phone that dials again
    // right after our 200 to its BYE must not find itself busy.
    const freed = this.d.phones.get(h.phone.number)?.deliver({ op: 'free', call: h.key });
    await Promise.all(h.allocations().map((a) => this.d.mrm.release(a.id)));
    await freed;
    this.d.log.info({ call: h.call, role: h.role, phone: h.phone.number, reason, was_up: wasUp }, 'call half ended');
  }

  private reAck(res: SipResponse): void {
    const h = this.byCallId.get(res.headers.get('call-id') ?? '');
    if (h?.dialog) this.d.stack.request(h.dialog.ackFor(res), h.dialog.peer, () => undefined);
  }

  private failed(tx: ServerTransaction, err: unknown): void {
    this.d.log.error({ err, method: tx.request.method }, 'SIP request handling failed');
    tx.respond(500);
  }
}


export type { SipPeer };
