// Setting a call up: a phone's new INVITE (admission, routing, the media
// resources the caller's leg needs, the setup signal to the callee's half,
// or a meet-me conference), the callee's half (the INVITE to its phone and
// its answers), and the progress/answer/reject signals back to the caller.
import { randomUUID } from 'node:crypto';
import type { SessionDescription } from 'sdp-transform';
import { parsePid } from '../cluster/pid.ts';
import type { PhoneSpec, ResolvedMrgl, TrunkSpec } from '../config/model.ts';
import { parseNameAddr, parseUri } from '../sip/grammar.ts';
import { SipHeaders, type SipRequest, type SipResponse } from '../sip/message.ts';
import { SdpError, answerDirection, audioOf, parseSdp, writeSdp, type AudioInfo } from '../sip/sdp.ts';
import type { ServerTransaction } from '../sip/transactions.ts';
import { Announcements } from './announcements.ts';
import { CodecFallback } from './codecFallback.ts';
import { SrtpFallback } from './srtpFallback.ts';
import type { CallContext } from './callContext.ts';
import { Dialog } from './dialog.ts';
import { type CalleeSetup, type CallerSetup, HalfCall } from './halfCall.ts';
import { reportTransferOutcome } from './transferOutcome.ts';
import { NoResource } from './mediaPath.ts';
import {
  bridgeCodec,
  calleeNeedsMtp,
  callerNeeds,
  dtmfOf,
  srtpOfferProblem,
  srtpPlan,
  type DtmfMethod,
} from './mediaPlan.ts';
import { MRGL_HEADER } from './registrar.ts';
import type { CallSignal, CallSignalReply } from './signals.ts';
import { routeOf, TrunkCalls } from './trunkCalls.ts';
import { DelayedOffer } from './delayedOffer.ts';
import type { SipPeer } from '../sip/transport.ts';
import type { TrunkPeer } from './trunkPeers.ts';
import { errorMessage, TandemError } from '../errors.ts';

/** The two phones' SRTP policies do not allow the call (488). */
export class NotAcceptable extends TandemError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export class CallSetup {
  private readonly announcements: Announcements;
  private readonly codecs: CodecFallback;
  private readonly srtp: SrtpFallback;
  private readonly trunks: TrunkCalls;
  private readonly delayed: DelayedOffer;

  /** what dialling the ad hoc conference number does (AdhocConference.start; set by CallControl) */
  adhoc: ((half: HalfCall, offer: SessionDescription) => Promise<void>) | undefined;

  constructor(private readonly c: CallContext) {
    this.announcements = new Announcements(c);
    this.codecs = new CodecFallback(c);
    this.srtp = new SrtpFallback(c);
    this.trunks = new TrunkCalls(c, { failed: (h, status, reason) => this.giveUp(h, status, reason) });
    this.delayed = new DelayedOffer(c);
  }

  /** call setups under way (INVITE received, the callee's node not yet calling it): the gate admits new ones below sip.max_setups_in_progress */
  setupsInProgress = 0;

  /** A phone of this node dials. */
  async onInvite(tx: ServerTransaction): Promise<void> {
    this.setupsInProgress++;
    try {
      await this.setUp(tx);
    } finally {
      this.setupsInProgress--;
    }
  }

  private async setUp(tx: ServerTransaction): Promise<void> {
    const { model, log, teardown, media, peer } = this.c;
    const req = tx.request;
    const fromUser = parseUri(parseNameAddr(req.headers.get('from')!)?.uri ?? '')?.user;
    // A call in from a trunk: known by the peer address it came from (a trunk's peers are configured, not registered).
    const trunk = this.c.trunkAt(tx.peer);
    if (trunk) this.c.trunkStats.attempt(trunk.number, 'in');
    const caller: PhoneSpec | undefined = trunk ?? (fromUser ? model.phones.get(fromUser) : undefined);
    if (!caller || !this.c.phones.has(caller.number))
      return void tx.respond(403, { reason: `Forbidden (${fromUser ?? 'caller'} is not a phone of ${this.c.node})` });
    const proc = this.c.phones.get(caller.number)!;
    if (!trunk) {
      const reg = proc.snapshot().registration;
      if (!reg || reg.address !== tx.peer.address || reg.port !== tx.peer.port) {
        return void tx.respond(403, {
          reason: `Forbidden (${caller.number} is not registered from ${tx.peer.address}:${tx.peer.port})`,
        });
      }
      // A node of the phone's Call Manager Group that does not control it now keeps its binding on standby only.
      if (!this.c.controls(caller.number))
        return void tx.respond(403, {
          reason: `Forbidden (${caller.number} is controlled by an earlier node of its group)`,
        });
      // The gate checked the Digest answer (sip.authenticate_invites) before any state was kept.
      if (model.config.sip.authenticate_invites && tx.authUser !== caller.number) {
        return void tx.respond(403, { reason: 'Forbidden (not authenticated)' });
      }
    }
    tx.respond(100);
    // No SDP: a delayed offer (DelayedOffer); the party's codecs are assumed from its config until its ACK answers.
    const delayed = req.body.length === 0;
    let offer: SessionDescription | undefined;
    let audio: AudioInfo;
    if (delayed) {
      const why = this.delayed.refusal(caller);
      if (why) return void tx.respond(488, { reason: `Not Acceptable Here (${why})` });
      audio = this.delayed.assumedAudio(caller);
    } else {
      try {
        offer = parseSdp(req.body);
        audio = audioOf(offer);
      } catch (err) {
        return void tx.respond(err instanceof SdpError ? 488 : 400, {
          reason: `Not Acceptable Here (${errorMessage(err)})`,
        });
      }
    }
    const called = parseUri(req.uri)?.user ?? '';
    // From a trunk, the called number is a DID: only the phone it names is reached (no conference, no way out again).
    const dialled = trunk ? (this.trunks.inboundTarget(trunk, called) ?? '') : called;
    if (trunk && !dialled)
      return void tx.respond(404, { reason: `Not Found (${called} is no number of this cluster)` });
    const conference = !trunk && model.isConferenceNumber(dialled);
    const adhoc = !trunk && dialled === model.config.sip.adhoc_conference_number && this.adhoc !== undefined;
    const callee = model.phones.get(dialled);
    // A carrier does not choose our devices: the MRGL header counts only from our own phones.
    const mrgl = trunk ? model.resolveMrgl(trunk) : this.callMrgl(req, caller, proc.snapshot().mrgl);
    const call = randomUUID();
    const setup: CallerSetup = { role: 'caller', invite: tx, delayedOffer: delayed };
    const half = new HalfCall(
      call,
      setup,
      caller,
      dialled,
      conference || adhoc || !callee ? undefined : callee.node,
      mrgl,
    );
    half.dialog = Dialog.forIncoming(req, tx.peer, this.c.phone.contactFor(tx.peer));
    if (!(await this.c.phone.seize(half, false)))
      return void tx.respond(486, { reason: `Busy Here (${caller.number} has ${caller.maxCalls} calls already)` });
    this.c.table.track(half);
    log.info({ call, caller: caller.number, dialled, mrgl: mrgl.mrgl, mrgl_source: mrgl.source }, 'call attempt');
    if (offer) {
      half.notePhone(audio);
      this.c.learnCodecs(caller.number, audio.codecs, 'offer');
      const srtpProblem = srtpOfferProblem(caller, audio);
      if (srtpProblem) return this.c.teardown.fail(half, 488, `Not Acceptable Here (${srtpProblem})`);
    }
    if (!offer && (conference || adhoc))
      return this.c.teardown.fail(half, 488, 'Not Acceptable Here (a conference needs the SDP offer in the INVITE)');
    // The devices of the caller's leg for this far party; with a delayed offer, one of them anchors the media.
    const plan = async (far: PhoneSpec) => {
      await this.planCallerLeg(half, audio, far);
      if (!offer) await this.delayed.anchor(half);
    };
    const farOffer = () => (offer ? media.farView(half, offer) : this.delayed.farOffer(half, audio));
    const route = conference || adhoc || callee ? undefined : routeOf(model.routePatterns, caller, dialled);
    if (route?.kind === 'no_route')
      return this.announcements.failWith(half, 'unknown_number', 404, `Not Found (no number ${dialled})`);
    if (route?.kind === 'not_allowed') {
      log.warn(
        { call, caller: caller.number, dialled, pattern: route.pattern.pattern, partition: route.pattern.partition },
        'number not allowed for the caller',
      );
      return this.announcements.failWith(
        half,
        'not_allowed',
        403,
        `Forbidden (${caller.number} may not dial ${dialled})`,
      );
    }
    try {
      if (conference) return await this.joinConference(half, offer!);
      if (adhoc) return await this.adhoc!(half, offer!);
      if (route) {
        half.lastPhoneSdp = offer;
        setup.trunkRoute = { number: route.number, trunks: route.trunks, at: 0, plan, offer: farOffer };
        if (await this.trunks.dial(half)) half.ring();
        return;
      }
      const entry = this.c.devices.lookup(dialled);
      const registration = entry.registered ? entry.entry.registration : undefined;
      if (!registration || registration.expires_at < Date.now()) {
        return this.announcements.failWith(
          half,
          'unavailable',
          480,
          `Temporarily Unavailable (${dialled} is not registered)`,
        );
      }
      // Where the callee is registered now: its own node, or another of its Call Manager Group.
      half.peerNode = entry.registered ? entry.entry.node : half.peerNode;
      await plan(callee!);
      const display = parseNameAddr(req.headers.get('from')!)?.display;
      // A call in from a trunk shows the outside caller's number (when it is one) to the phone.
      const calling = trunk && fromUser && /^\+?[0-9*#]{1,32}$/.test(fromUser) ? { calling: fromUser } : {};
      const reply = await peer.signal(half, {
        op: 'setup',
        call,
        caller: { number: caller.number, node: this.c.node, ...(display ? { display } : {}), ...calling },
        callee: dialled,
        offer: writeSdp(farOffer()).toString(),
      });
      if (!reply.ok && reply.status === 480) return this.announcements.failWith(half, 'unavailable', 480, reply.reason);
      if (!reply.ok) return teardown.fail(half, reply.status, reply.reason);
      half.ring();
    } catch (err) {
      if (err instanceof NoResource)
        return this.announcements.failWith(half, 'no_resource', 503, `Service Unavailable (${err.message})`);
      if (err instanceof NotAcceptable) return this.c.teardown.fail(half, 488, `Not Acceptable Here (${err.message})`);
      throw err;
    }
  }

  /**
   * The devices a caller's leg needs for this callee (MTP, transcoder), from
   * the caller's offer and what the callee takes (config, else learnt from
   * its SDP: the mapping table has it). Throws NoResource.
   */
  async planCallerLeg(half: HalfCall, offer: AudioInfo, callee: PhoneSpec): Promise<void> {
    const caller = half.phone;
    const entry = this.c.devices.lookup(callee.number);
    const needs = callerNeeds(caller, offer, callee, entry.registered ? entry.entry.codecs : undefined);
    const srtp = srtpPlan(caller, offer, callee);
    if (srtp.refuse) throw new NotAcceptable(srtp.refuse);
    half.sdes.far.on = srtp.calleeSrtp;
    // The MTP converts DTMF when the two phones' methods differ, and SRTP to RTP for a callee without SRTP.
    const dtmf: [DtmfMethod, DtmfMethod] = [
      dtmfOf(offer)[0]!,
      callee.dtmf.includes('rfc4733') ? 'rfc4733' : 'sip_info',
    ];
    const mtpWhy = [needs.mtp, srtp.convert].filter(Boolean).join('; ');
    if (mtpWhy)
      await this.c.media.insert(half, 'mtp', mtpWhy, { optional: !caller.mtpRequired && !srtp.convert, dtmf });
    if (needs.transcode) {
      const { callerCodec, calleeCodecs } = needs.transcode;
      await this.c.media.insert(
        half,
        'transcoder',
        `no common codec: ${caller.number} offers ${offer.codecs.join(',')}, ${callee.number} takes ${calleeCodecs.join(',')}`,
        {
          requirement: { codecs: [callerCodec, calleeCodecs[0]!] },
          codecs: [callerCodec, calleeCodecs[0]!],
        },
      );
      const ins = half.inserts[half.inserts.length - 1]!;
      ins.phoneCodecs = [callerCodec];
      ins.farCodecs = calleeCodecs;
      ins.learnt = !callee.codecsConfigured;
    }
  }

  /** A meet-me conference: the bridge (the room's, if one runs somewhere) answers the phone itself. */
  private async joinConference(half: HalfCall, offer: SessionDescription): Promise<void> {
    const a = audioOf(offer);
    const codec = bridgeCodec(a);
    // A room already running on some bridge of the cluster: join it there.
    const room = this.c.devices.lookup(`conf-${half.far}`);
    const pinned = room.registered ? parsePid(room.entry.pid)?.name : undefined;
    const ins = (await this.c.media.insert(half, 'conference_bridge', `meet-me conference ${half.far}`, {
      ...(pinned ? { preferred: { device: pinned, group: `(conference ${half.far})` } } : {}),
      requirement: { codecs: [codec] },
      codecs: [codec, undefined],
      room: half.far,
    }))!;
    // The room's bridge was full (or gone): this participant's room, on another bridge, is linked to it.
    if (pinned && ins.allocation.resource !== pinned) {
      await this.c.mrm
        .linkRooms(half.far, pinned, ins.allocation.resource)
        .catch((err: unknown) =>
          this.c.log.warn({ conference: half.far, err: errorMessage(err) }, 'conference rooms not linked'),
        );
    }
    const answer = half.own(ins.phoneSide, [codec], answerDirection(a.direction));
    half.answer();
    half.as('caller').invite?.respond(200, this.c.phone.answerOpts(half, answer));
    this.c.log.info(
      { call: half.call, phone: half.phone.number, conference: half.far, bridge: ins.allocation.resource },
      'joined conference',
    );
    void this.announcements.conferenceEntry(half, ins.allocation.resource);
  }

  /**
   * The caller's half asks for a call to a phone of this node, or out
   * through a trunk this node carries: the callee's half INVITEs it.
   */
  async onSetup(s: Extract<CallSignal, { op: 'setup' }>): Promise<CallSignalReply> {
    const { model, media, teardown } = this.c;
    const trunk = s.trunk !== undefined ? model.trunks.get(s.trunk) : undefined;
    if (s.trunk !== undefined && (!trunk || !this.c.phones.has(trunk.number)))
      return { ok: false, status: 404, reason: `Not Found (trunk ${s.trunk} is not carried by ${this.c.node})` };
    // Every peer silent to the keep-alive: refused at once, so the route's next trunk is tried without a wait.
    const servers = trunk ? this.c.trunkServers(trunk.number) : [];
    const firstPeer = trunk ? this.trunks.firstPeer(trunk, servers) : 0;
    if (trunk) this.c.trunkStats.attempt(trunk.number, 'out');
    if (trunk && firstPeer === undefined) {
      this.c.trunkStats.failed(trunk.number, 'no_peer_up');
      return { ok: false, status: 503, reason: `Service Unavailable (no peer of trunk ${trunk.number} answers)` };
    }
    const callee = trunk ?? model.phones.get(s.callee);
    if (!callee || !this.c.phones.has(callee.number))
      return { ok: false, status: 404, reason: `Not Found (${s.callee} is not on ${this.c.node})` };
    const proc = this.c.phones.get(callee.number)!;
    const st = proc.snapshot();
    if (!st.registration)
      return { ok: false, status: 480, reason: `Temporarily Unavailable (${callee.number} is not registered)` };
    const setup: CalleeSetup = { role: 'callee', gotProvisional: false, cancelWanted: false };
    const half = new HalfCall(
      s.call,
      setup,
      callee,
      s.caller.number,
      s.caller.node,
      model.resolveMrgl(callee, { registration: st.mrgl }),
    );
    if (!(await this.c.phone.seize(half, true))) {
      // A trunk with every line taken: the route's next trunk may have room.
      if (trunk) this.c.trunkStats.failed(trunk.number, 'lines_full');
      return trunk
        ? {
            ok: false,
            status: 503,
            reason: `Service Unavailable (trunk ${trunk.number} has ${trunk.maxCalls} calls on ${this.c.node})`,
          }
        : { ok: false, status: 486, reason: `Busy Here (${callee.number} is in a call)` };
    }
    this.c.table.track(half);
    let offer: SessionDescription;
    try {
      offer = parseSdp(s.offer);
      // What the caller's half offers reaches the phone as it is (the caller's node converted already where policies differ).
      half.sdes.far.heard(audioOf(offer));
      half.sdes.phone.on = half.sdes.far.on;
      if (half.sdes.far.on && callee.srtp === 'off')
        throw new NotAcceptable(`${callee.number} does not do SRTP (srtp: off)`);
      if (!half.sdes.far.on && callee.srtp === 'required')
        throw new NotAcceptable(`${callee.number} requires encrypted media (srtp: required)`);
      const mtp = calleeNeedsMtp(callee);
      if (mtp)
        await media.insert(half, 'mtp', mtp, {
          dtmf: [callee.dtmf.includes('rfc4733') ? 'rfc4733' : 'sip_info', 'rfc4733'],
        });
    } catch (err) {
      await teardown.cleanup(half, 'setup failed');
      if (err instanceof NoResource) return { ok: false, status: 503, reason: `Service Unavailable (${err.message})` };
      return { ok: false, status: 488, reason: `Not Acceptable Here (${errorMessage(err)})` };
    }
    setup.ringTimer = setTimeout(() => {
      if (half.state !== 'up' && half.state !== 'ended') {
        setup.cancelWanted = true;
        if (setup.gotProvisional && setup.outInvite && half.dialog)
          this.c.stack.cancel(setup.outInvite, half.dialog.peer);
        void this.c.peer.signal(half, {
          op: 'reject',
          call: half.call,
          status: 480,
          reason: 'Temporarily Unavailable (no answer)',
        });
        void teardown.cleanup(half, 'no answer');
      }
    }, model.config.sip.ring_timeout_ms);
    const from = {
      number: s.caller.calling ?? s.caller.number,
      ...(s.caller.display ? { display: s.caller.display } : {}),
    };
    if (trunk) {
      setup.trunkOut = { number: s.callee, from, servers, peer: firstPeer! };
      this.inviteOut(half, offer, from, this.trunkTarget(servers[firstPeer!]!, s.callee), trunk.setupTimeoutMs);
    } else {
      const reg = st.registration;
      this.inviteOut(half, offer, from, {
        toUri: `sip:${callee.number}@${this.c.sipAddress}`,
        target: reg.contact,
        peer: { transport: reg.transport, address: reg.address, port: reg.port },
      });
    }
    return { ok: true };
  }

  /** Where the INVITE of a call out through a trunk goes: one of its servers (by name in the Request-URI and To), the number. */
  private trunkTarget(server: TrunkPeer, number: string): { toUri: string; target: string; peer: SipPeer } {
    const params = server.transport === 'UDP' ? '' : `;transport=${server.transport.toLowerCase()}`;
    const uri = `sip:${number}@${server.host}:${server.port}${params}`;
    return { toUri: `sip:${number}@${server.host}:${server.port}`, target: uri, peer: server };
  }

  /**
   * The callee half's INVITE (with the offer the caller's half sent) to its
   * phone or trunk peer. `silentMs`: a peer that sends nothing at all within
   * it is given up (a trunk's next peer is tried).
   */
  private inviteOut(
    half: HalfCall,
    offer: SessionDescription,
    from: { number: string; display?: string },
    to: { toUri: string; target: string; peer: SipPeer },
    silentMs?: number,
  ): void {
    const host = this.c.sipAddress;
    const dialog = Dialog.outgoing({
      fromUri: `sip:${from.number}@${host}`,
      ...(from.display ? { fromDisplay: from.display } : {}),
      toUri: to.toUri,
      target: to.target,
      peer: to.peer,
      contact: this.c.phone.contactFor(to.peer),
      callIdHost: host.split(':')[0]!,
    });
    half.dialog = dialog;
    half.as('callee').gotProvisional = false;
    this.c.table.bindCallId(half);
    this.sendInvite(half, this.c.phone.invite(half, this.c.media.phoneView(half, offer)), silentMs);
  }

  /** Sends the callee half's INVITE (a first one, or again with credentials); `silentMs` as for inviteOut. */
  private sendInvite(half: HalfCall, invite: SipRequest, silentMs: number | undefined): void {
    const dialog = half.dialog!;
    const setup = half.as('callee');
    setup.outInvite = invite;
    half.ring();
    let heard = false;
    const silence =
      silentMs === undefined
        ? undefined
        : setTimeout(() => {
            if (!heard && setup.outInvite === invite)
              void this.onInviteResponse(half, invite, 0, undefined).catch((err: unknown) =>
                this.c.log.error({ err }, 'INVITE response handling failed'),
              );
          }, silentMs);
    this.c.stack.request(invite, dialog.peer, (res) => {
      heard = true;
      clearTimeout(silence);
      void this.onInviteResponse(half, invite, res.status, res).catch((err: unknown) =>
        this.c.log.error({ err }, 'INVITE response handling failed'),
      );
    });
  }

  /** Our INVITE to the callee's phone: progress, the answer (then ACK), or a refusal, each told to the caller's half. */
  private async onInviteResponse(
    h: HalfCall,
    invite: SipRequest,
    status: number,
    res: SipResponse | undefined,
  ): Promise<void> {
    const { stack, peer, teardown, media } = this.c;
    const setup = h.as('callee');
    // An answer to an INVITE given up for another peer of the trunk (it came too late).
    if (setup.outInvite !== invite) return;
    const dialog = h.dialog!;
    // A trunk's peer that answered nothing (status 0), or 408 or 5xx: its next peer, if it has one.
    if ((status === 0 || status >= 300) && h.lastFarSdp && this.trunks.nextPeer(h, status)) {
      this.c.log.warn(
        {
          call: h.call,
          trunk: h.phone.number,
          peer: `${dialog.peer.address}:${dialog.peer.port}`,
          status: status || 'no answer',
        },
        'trunk peer did not take the call: trying the next',
      );
      const trunk = h.phone as TrunkSpec;
      const out = setup.trunkOut!;
      this.inviteOut(
        h,
        h.lastFarSdp,
        out.from,
        this.trunkTarget(out.servers[out.peer]!, out.number),
        trunk.setupTimeoutMs,
      );
      return;
    }
    // The trunk's far end wants credentials: the same INVITE once more with them (a second challenge is a refusal).
    if (
      (status === 401 || status === 407) &&
      res &&
      setup.trunkOut &&
      h.lastFarSdp &&
      h.state !== 'ended' &&
      !setup.cancelWanted
    ) {
      const trunk = h.phone as TrunkSpec;
      const again = this.c.phone.invite(h, this.c.media.phoneView(h, h.lastFarSdp));
      const auth = this.trunks.answerChallenge(h, again, res);
      if (auth) {
        again.headers.append(status === 401 ? 'authorization' : 'proxy-authorization', auth);
        this.sendInvite(h, again, trunk.setupTimeoutMs);
        return;
      }
      res = { ...res, status: 503, reason: `Service Unavailable (trunk ${trunk.number} refused our credentials)` };
    }
    if (!res)
      res = {
        kind: 'response',
        status: 408,
        reason: 'Request Timeout (the trunk did not answer)',
        headers: new SipHeaders(),
        body: Buffer.alloc(0),
      };
    if (res.status < 200) {
      const first = !setup.gotProvisional;
      setup.gotProvisional = true;
      if (setup.cancelWanted && first) stack.cancel(invite, dialog.peer);
      else if (res.status >= 180 && h.state !== 'ended')
        await peer.signal(h, { op: 'progress', call: h.call, status: res.status });
      return;
    }
    clearTimeout(setup.ringTimer);
    if (res.status < 300) {
      dialog.learn(res);
      stack.request(dialog.ackFor(res), dialog.peer, () => undefined);
      if (setup.cancelWanted || h.state === 'ended') {
        stack.request(dialog.request('BYE'), dialog.peer, () => undefined);
        return;
      }
      this.c.table.bindDialog(h);
      h.answer();
      let answer: SessionDescription;
      try {
        answer = parseSdp(res.body);
        this.c.learnCodecs(h.phone.number, audioOf(answer).codecs, 'answer');
      } catch {
        await teardown.hangup(h, 'the phone answered without usable SDP', true);
        return;
      }
      await peer.signal(h, { op: 'answer', call: h.call, sdp: writeSdp(media.farView(h, answer)).toString() });
      return;
    }
    if (h.state === 'ended') return;
    if (setup.trunkOut && !setup.cancelWanted) this.c.trunkStats.failed(h.phone.number, status === 0 ? 0 : res.status);
    // Codecs learnt of the phone that it now refuses were learnt of another device, or are out of date.
    if ((res.status === 488 || res.status === 606) && !h.phone.codecsConfigured)
      this.c.learnCodecs(h.phone.number, [], 'refused');
    // The line is free before the caller's half hears of it: it may try again at once (CodecFallback).
    const cancelled = setup.cancelWanted;
    await teardown.cleanup(h, `phone answered ${res.status}`);
    if (!cancelled)
      await peer.signal(h, { op: 'reject', call: h.call, status: res.status, reason: res.reason || 'rejected' });
  }

  /** The ACK of our phone's call: with a delayed offer, its answer. */
  onAck(h: HalfCall, ack: SipRequest): void {
    this.delayed.onAck(h, ack);
  }

  /** The callee's half reports ringing. */
  progress(h: HalfCall, status: number): CallSignalReply {
    if (h.state !== 'up') h.caller?.invite?.respond(status, this.c.phone.answerOpts(h));
    return { ok: true };
  }

  /** The callee refused the call: a transcoder may save it (codecs refused), else the caller gets the refusal. */
  async refused(h: HalfCall, status: number, reason: string): Promise<CallSignalReply> {
    if (await this.trunks.retry(h, status)) return { ok: true };
    if ((await this.srtp.retry(h, status)) || (await this.codecs.retry(h, status))) return { ok: true };
    await this.giveUp(h, status, reason);
    return { ok: true };
  }

  /** Out through the route in `h.trunkRoute` (a transferred phone's new call); false when no trunk took it. */
  dialOut(h: HalfCall): Promise<boolean> {
    return this.trunks.dial(h);
  }

  /** The call could not be made: the caller hears why; a transferred phone, in a dialog already, is hung up and the transferor told. */
  private async giveUp(h: HalfCall, status: number, reason: string): Promise<void> {
    if (h.transferring) {
      await this.c.teardown.hangup(h, `transfer to ${h.far} failed: ${reason}`, true);
      await reportTransferOutcome(this.c, h, status, reason);
    } else await this.c.teardown.fail(h, status, reason, false);
  }

  /** The callee answered: answer our caller (through a transcoder when the callee answered a codec the caller did not offer). */
  async answered(h: HalfCall, sdp: string): Promise<CallSignalReply> {
    const far = parseSdp(sdp);
    await this.codecs.afterAnswer(h, far);
    if (h.transferring) return this.transferAnswered(h, far);
    const view = this.c.media.phoneView(h, far);
    h.answer();
    h.caller?.invite?.respond(200, this.c.phone.answerOpts(h, view));
    this.c.log.info({ call: h.call, caller: h.phone.number, callee: h.far }, 'call answered');
    return { ok: true };
  }

  /** The target of a transfer answered: our (held) phone leaves music on hold for it. */
  private async transferAnswered(h: HalfCall, far: SessionDescription): Promise<CallSignalReply> {
    h.transferring = false;
    h.heldByFar(false);
    h.answer();
    await this.c.media.stopMusicOnHold(h);
    void this.c.phone.reinvite(h, this.c.media.phoneView(h, far));
    this.c.log.info({ call: h.call, phone: h.phone.number, target: h.far }, 'transfer completed');
    await reportTransferOutcome(this.c, h, 200, 'OK');
    return { ok: true };
  }

  /** The caller's MRGL for this call: the INVITE's header (if known), else what ClusterModel.resolveMrgl says. */
  private callMrgl(req: SipRequest, phone: PhoneSpec, registered: string | undefined): ResolvedMrgl {
    let fromHeader = req.headers.get(MRGL_HEADER)?.trim() || undefined;
    if (fromHeader && !this.c.model.mrgls.has(fromHeader)) {
      this.c.log.warn({ phone: phone.number, mrgl: fromHeader }, `ignoring unknown MRGL in ${MRGL_HEADER}`);
      fromHeader = undefined;
    }
    return this.c.model.resolveMrgl(phone, { request: fromHeader, registration: registered });
  }
}
