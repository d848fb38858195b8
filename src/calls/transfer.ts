// Transfer (REFER, RFC 3515). Blind: a phone in a call refers the other
// party to a number; the other party's half, on its own node, puts its phone
// on network hold with music, lets go of the old pair's resources, becomes
// the caller of a new call to the target (resources planned for the new
// pair) and, when the target answers, moves its phone's media there.
// Attended (Refer-To with Replaces, RFC 3891): the referring phone has a
// consultation call with the target; the other party's half calls the
// target's half of that call, which takes the new call over in place (a
// re-INVITE of the target's phone, no ringing). Either way the referring
// phone hears progress by NOTIFY and its halves end without ending the
// halves that moved on. Blind, the final NOTIFY is the new call's final
// answer (RFC 3515): the transferee's half reports it (transferOutcome) and
// the referring half ends then. A target that cannot be called (unknown, not
// registered, no established call to move) is refused before anything
// moves, so the original call goes on (RFC 5589 section 6: the transferor
// may take the other party back); a failure after that ends both.
import { randomUUID } from 'node:crypto';
import type { SessionDescription } from 'sdp-transform';
import { parseNameAddr, parseReplaces, parseUri, uriHeaders } from '../sip/grammar.ts';
import { parseSdp, withDirection, writeSdp } from '../sip/sdp.ts';
import type { ServerTransaction } from '../sip/transactions.ts';
import type { CallContext } from './callContext.ts';
import type { CallSetup } from './callSetup.ts';
import { otherRole, type HalfCall } from './halfCall.ts';
import { NoResource } from './mediaPath.ts';
import { calleeNeedsMtp } from './mediaPlan.ts';
import type { CallSignal, CallSignalReply } from './signals.ts';
import { reportTransferOutcome } from './transferOutcome.ts';
import { routeOf } from './trunkCalls.ts';
import { errorMessage } from '../errors.ts';

type SetupSignal = Extract<CallSignal, { op: 'setup' }>;
/** where a transfer to an outside number goes: the number as the trunks see it, through these trunks in order */
type OutsideRoute = { number: string; trunks: readonly string[] };

/** how long a referring phone's half waits for the outcome of a blind transfer (the target rings meanwhile) */
const OUTCOME_WAIT_MS = 180_000;

const sipfrag = (status: string) => ({
  type: 'message/sipfrag;version=2.0',
  data: Buffer.from(`SIP/2.0 ${status}\r\n`),
});

export class Transfer {
  constructor(
    private readonly c: CallContext,
    private readonly setup: CallSetup,
  ) {}

  /** Our phone refers the other party elsewhere (to a number, or in place of its consultation call). */
  async onRefer(tx: ServerTransaction): Promise<void> {
    const h = this.c.phone.inDialog(tx);
    if (!h) return;
    const referTo = parseNameAddr(tx.request.headers.get('refer-to') ?? '')?.uri ?? '';
    const target = parseUri(referTo)?.user;
    if (!target) return void tx.respond(400, { reason: 'Bad Request (Refer-To with a number is required)' });
    if (h.state !== 'up' || !h.peerNode)
      return void tx.respond(488, { reason: 'Not Acceptable Here (no two-party call to transfer)' });
    const replacesRaw = uriHeaders(referTo).get('replaces');
    // A number that is no phone leaves through the dial plan, by the referring phone's class of service.
    if (!this.c.model.phones.has(target)) {
      const out = this.outside(h.phone.number, target, replacesRaw !== undefined);
      if (!out.ok) {
        if (out.status === 403)
          this.c.log.warn({ call: h.call, phone: h.phone.number, target }, 'transfer to a number not allowed');
        return void tx.respond(out.status, { reason: out.reason });
      }
    }
    let consultation: HalfCall | undefined;
    if (replacesRaw !== undefined) {
      const r = parseReplaces(replacesRaw);
      if (!r) return void tx.respond(400, { reason: 'Bad Request (malformed Replaces in Refer-To)' });
      // Either tag may be ours, depending on which side the phone wrote it from.
      consultation = this.c.table.forDialogId(r.callId, r.toTag) ?? this.c.table.forDialogId(r.callId, r.fromTag);
      if (!consultation || consultation === h || consultation.phone.number !== h.phone.number) {
        return void tx.respond(481, { reason: 'Call/Transaction Does Not Exist (the call named by Replaces)' });
      }
      if (consultation.state !== 'up' || !consultation.peerNode || consultation.far !== target) {
        return void tx.respond(488, { reason: `Not Acceptable Here (no established call with ${target} to replace)` });
      }
    }
    tx.respond(202);
    this.notify(h, '100 Trying', false);
    this.c.log.info(
      { call: h.call, phone: h.phone.number, transferee: h.far, target, attended: consultation !== undefined },
      consultation ? 'attended transfer' : 'blind transfer',
    );
    const reply = await this.c.peer.signal(h, {
      op: 'transfer',
      call: h.call,
      target,
      ...(consultation ? { replaces: { call: consultation.call, role: otherRole(consultation.role) } } : {}),
    });
    if (!reply.ok) {
      // Nothing moved: the call goes on, and the phone may take the other party back.
      this.notify(h, `${reply.status} ${reply.reason}`, true);
      return;
    }
    if (!consultation) {
      // The other party calls the target now: the final NOTIFY waits for that call's answer.
      this.notify(h, '180 Ringing', false);
      h.referring = setTimeout(
        () => void this.outcome(h, 408, 'Request Timeout (no outcome of the transfer)'),
        OUTCOME_WAIT_MS,
      );
      h.referring.unref();
      return;
    }
    this.notify(h, '200 OK', true);
    // The other party and the target now belong to a new call: end ours without telling them.
    await Promise.all([
      this.c.teardown.hangup(h, `transferred ${h.far} to ${target}`, true),
      this.c.teardown.hangup(consultation, `${target} taken over by ${h.far} (attended transfer)`, true),
    ]);
  }

  /** The referring half learns how the blind transfer ended: the final NOTIFY, and its call ends (the other party moved on). */
  async outcome(h: HalfCall, status: number, reason: string): Promise<CallSignalReply> {
    if (h.referring === undefined || h.state === 'ended')
      return { ok: false, status: 481, reason: 'no transfer in progress' };
    clearTimeout(h.referring);
    h.referring = undefined;
    this.notify(h, `${status} ${reason}`, true);
    this.c.log.info(
      { call: h.call, phone: h.phone.number, status },
      status === 200 ? 'transfer done' : 'transfer failed',
    );
    await this.c.teardown.hangup(
      h,
      status === 200 ? `transferred ${h.far}` : `transfer of ${h.far} failed (${status})`,
      true,
    );
    return { ok: true };
  }

  /** The other half referred our phone to `target`: hold it with music (blind), call the target for it. */
  async onTransfer(h: HalfCall, s: Extract<CallSignal, { op: 'transfer' }>): Promise<CallSignalReply> {
    const { model, media, peer } = this.c;
    const target = model.phones.get(s.target);
    // (checked again here: the referring node's word is not taken for the class of service)
    const out = target ? undefined : this.outside(h.far, s.target, s.replaces !== undefined);
    if (out && !out.ok) return out;
    if (!h.lastPhoneSdp || h.state !== 'up')
      return { ok: false, status: 488, reason: 'Not Acceptable Here (the call is not established)' };
    if (out?.ok) return this.transferOut(h, s.target, out.route);
    if (!target) return { ok: false, status: 404, reason: `Not Found (no number ${s.target})` };
    // Refused before anything moves, so the original call goes on.
    if (!s.replaces && !this.c.devices.lookup(target.number).entry?.registration) {
      return { ok: false, status: 480, reason: `Temporarily Unavailable (${target.number} is not registered)` };
    }
    const transferor = h.far;
    await this.becomeCaller(h, target.number, this.c.homeOf(target.number), !s.replaces);
    try {
      if (h.phoneAudio) await this.setup.planCallerLeg(h, h.phoneAudio, target);
    } catch (err) {
      if (!(err instanceof NoResource)) throw err;
      await this.c.teardown.hangup(h, `transfer: ${err.message}`, true);
      if (s.replaces) return { ok: false, status: 503, reason: 'Service Unavailable (no resource for the new call)' };
      // (the old call is gone here: the transferor hears the outcome, and its half ends)
      void reportTransferOutcome(this.c, h, 503, 'Service Unavailable (no resource for the new call)');
      return { ok: true };
    }
    const reply = await peer.signal(h, {
      op: 'setup',
      call: h.call,
      caller: { number: h.phone.number, node: this.c.node },
      callee: target.number,
      // (the phone's last SDP may be its answer to being held)
      offer: writeSdp(media.farView(h, withDirection(h.lastPhoneSdp, 'sendrecv'))).toString(),
      ...(s.replaces ? { replaces: { ...s.replaces, transferor } } : {}),
    });
    if (!reply.ok) {
      await this.c.teardown.hangup(h, `transfer to ${target.number} refused: ${reply.reason}`, true);
      if (s.replaces) return reply;
      void reportTransferOutcome(this.c, h, reply.status, reply.reason);
    }
    return { ok: true };
  }

  /**
   * Blind transfer to an outside number: the transferee's half calls it
   * through the route's trunks, as a phone dialling it would; the final
   * NOTIFY is that call's answer.
   */
  private async transferOut(h: HalfCall, dialled: string, route: OutsideRoute): Promise<CallSignalReply> {
    const { media } = this.c;
    await this.becomeCaller(h, dialled, undefined, true);
    const phoneSdp = h.lastPhoneSdp!;
    h.as('caller').trunkRoute = {
      number: route.number,
      trunks: route.trunks,
      at: 0,
      plan: async (trunk) => {
        if (h.phoneAudio) await this.setup.planCallerLeg(h, h.phoneAudio, trunk);
      },
      offer: () => media.farView(h, withDirection(phoneSdp, 'sendrecv')),
    };
    this.c.log.info({ call: h.call, phone: h.phone.number, number: route.number }, 'transfer to an outside number');
    try {
      await this.setup.dialOut(h);
    } catch (err) {
      if (!(err instanceof NoResource)) throw err;
      await this.c.teardown.hangup(h, `transfer: ${err.message}`, true);
      void reportTransferOutcome(this.c, h, 503, 'Service Unavailable (no resource for the new call)');
    }
    return { ok: true };
  }

  /**
   * The transferee's half leaves its call for a new one it places: the old
   * pair's devices go, the phone hears the transferor's network hold while
   * the target rings (blind), and the half is rekeyed as the new call's caller.
   */
  private async becomeCaller(h: HalfCall, far: string, peerNode: string | undefined, blind: boolean): Promise<void> {
    await Promise.all(h.inserts.map((i) => i.allocation.release()));
    h.inserts = [];
    if (blind) await this.networkHold(h);
    const referredBy = h.peerNode ? { call: h.call, role: otherRole(h.role), node: h.peerNode } : undefined;
    await this.c.phone.rekey(h, { call: randomUUID(), role: 'caller', far, peerNode });
    h.referredBy = blind ? referredBy : undefined;
    h.transferring = true;
  }

  /**
   * Whether a transfer to `target`, a number that is no phone, may leave the
   * cluster: only blind, only when a phone refers (an outside party may not
   * send one outside party to another: toll fraud), by that phone's class of
   * service (the dial plan's one rule, routeOf).
   */
  private outside(
    transferor: string,
    target: string,
    attended: boolean,
  ): { ok: true; route: OutsideRoute } | { ok: false; status: number; reason: string } {
    const phone = this.c.model.phones.get(transferor);
    const decision = routeOf(this.c.model.routePatterns, phone ?? { partitions: new Set() }, target);
    if (decision.kind === 'no_route') return { ok: false, status: 404, reason: `Not Found (no number ${target})` };
    if (attended)
      return { ok: false, status: 488, reason: 'Not Acceptable Here (attended transfer to an outside number)' };
    if (!phone || decision.kind === 'not_allowed')
      return { ok: false, status: 403, reason: `Forbidden (${transferor} may not transfer to ${target})` };
    return { ok: true, route: { number: decision.number, trunks: decision.trunks } };
  }

  /**
   * Attended transfer, on the target's node: the target's half of the
   * consultation call becomes the callee's half of the transferee's new call.
   * Its phone gets a re-INVITE towards the transferee; the answer goes back
   * as the new call's answer.
   */
  async onReplacingSetup(s: SetupSignal, replaces: NonNullable<SetupSignal['replaces']>): Promise<CallSignalReply> {
    const { media, peer } = this.c;
    const h = this.c.table.get(`${replaces.call}/${replaces.role}`);
    if (h?.state !== 'up' || h.phone.number !== s.callee || h.far !== replaces.transferor) {
      return { ok: false, status: 481, reason: 'Call/Transaction Does Not Exist (no consultation call to replace)' };
    }
    let offer: SessionDescription;
    try {
      offer = parseSdp(s.offer);
    } catch (err) {
      return { ok: false, status: 488, reason: `Not Acceptable Here (${errorMessage(err)})` };
    }
    // The consultation call's devices and any music on hold go; the new pair's are planned by the caller's half.
    await Promise.all(h.allocations().map((a) => a.release()));
    h.inserts = [];
    h.moh = undefined;
    h.heldByFar(false);
    h.phoneHolds('sendrecv');
    await this.c.phone.rekey(h, { call: s.call, role: 'callee', far: s.caller.number, peerNode: s.caller.node });
    const mtp = calleeNeedsMtp(h.phone);
    try {
      if (mtp)
        await media.insert(h, 'mtp', mtp, {
          dtmf: [h.phone.dtmf.includes('rfc4733') ? 'rfc4733' : 'sip_info', 'rfc4733'],
        });
    } catch (err) {
      if (!(err instanceof NoResource)) throw err;
      await this.c.teardown.hangup(h, `attended transfer: ${err.message}`, true);
      return { ok: false, status: 503, reason: `Service Unavailable (${err.message})` };
    }
    this.c.log.info(
      { call: h.call, phone: h.phone.number, transferee: s.caller.number, transferor: replaces.transferor },
      'attended transfer: call taken over',
    );
    void this.c.phone.reinvite(h, media.phoneView(h, offer)).then((r) => {
      if (r.ok) {
        void peer.signal(h, { op: 'answer', call: h.call, sdp: writeSdp(media.farView(h, r.sdp)).toString() });
        return;
      }
      void peer.signal(h, {
        op: 'reject',
        call: h.call,
        status: r.status,
        reason: 'the target refused the transferred call',
      });
      void this.c.teardown.hangup(h, 'attended transfer refused by the phone', true);
    });
    return { ok: true };
  }

  /** The transferee waits on the transferor's network hold audio source (restarting user hold music from another source). */
  private async networkHold(h: HalfCall): Promise<void> {
    const { model, media } = this.c;
    const source = model.phones.get(h.far)?.networkHoldAudioSource;
    if (h.held && h.moh && h.mohSource === source) return;
    await media.stopMusicOnHold(h);
    h.heldByFar(true);
    const offer = await media.startMusicOnHold(h, 'network');
    if (!offer) return;
    void this.c.phone.reinvite(h, offer).then((r) => {
      if (r.ok) media.mohAnswered(h, r.audio);
    });
  }

  /** Progress of the referral to the referring phone (RFC 3515 section 2.4.4). */
  private notify(h: HalfCall, status: string, final: boolean): void {
    const dialog = h.dialog;
    if (!dialog) return;
    const req = dialog.request('NOTIFY', sipfrag(status), [
      ['event', 'refer'],
      ['subscription-state', final ? 'terminated;reason=noresource' : 'active;expires=60'],
    ]);
    this.c.stack.request(req, dialog.peer, () => undefined);
  }
}
