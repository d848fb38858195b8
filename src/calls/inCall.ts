// Requests inside an established call: a phone's re-INVITE (hold, resume,
// a new media address) carried to the far end, the far end's re-offers
// carried to our phone (with music on hold while it is held), BYE, CANCEL
// of a ringing call, and DTMF by SIP INFO.
import type { SessionDescription } from 'sdp-transform';
import { answerDirection, audioOf, parseSdp, withDirection, writeSdp } from '../sip/sdp.ts';
import type { ServerTransaction } from '../sip/transactions.ts';
import type { CallContext } from './callContext.ts';
import { dtmfFromInfo } from './dtmfRelay.ts';
import type { HalfCall } from './halfCall.ts';
import type { CallSignal, CallSignalReply } from './signals.ts';
import { errorMessage } from '../errors.ts';

export class InCall {
  constructor(private readonly c: CallContext) {}

  /** Our phone re-offers (hold, resume, new address): to the far end; a conference bridge answers itself. */
  async onReinvite(tx: ServerTransaction): Promise<void> {
    const h = this.c.phone.inDialog(tx);
    if (!h) return;
    if (h.state !== 'up') return void tx.respond(491);
    if (h.pendingReinvite) return void tx.respond(491);
    let offer: SessionDescription;
    try {
      offer = parseSdp(tx.request.body);
      audioOf(offer);
    } catch (err) {
      return void tx.respond(488, { reason: `Not Acceptable Here (${errorMessage(err)})` });
    }
    const dir = audioOf(offer).direction;
    h.phoneHolds(dir);
    if (!h.peerNode) {
      // Conference: the bridge answers for itself.
      const ins = h.inserts[0]!;
      return void tx.respond(
        200,
        this.c.phone.answerOpts(h, h.own(ins.phoneSide, audioOf(offer).codecs.slice(0, 1), answerDirection(dir))),
      );
    }
    h.pendingReinvite = tx;
    const reply = await this.c.peer.signal(h, {
      op: 'reoffer',
      call: h.call,
      sdp: writeSdp(this.c.media.farView(h, offer)).toString(),
    });
    if (!reply.ok) {
      h.pendingReinvite = undefined;
      tx.respond(reply.status, { reason: reply.reason });
    }
  }

  async onBye(tx: ServerTransaction): Promise<void> {
    const h = this.c.phone.inDialog(tx);
    if (!h) return;
    const done = this.c.teardown.hangup(h, `${h.phone.number} hung up`, false, true);
    tx.respond(200);
    await done;
  }

  /** DTMF as SIP INFO from our phone. */
  onInfo(tx: ServerTransaction): void {
    const h = this.c.phone.inDialog(tx);
    if (!h) return;
    tx.respond(200);
    const d = dtmfFromInfo(tx.request);
    if (d) this.c.dtmf.fromPhone(h, d.digit, d.durationMs);
  }

  /** The caller gave up before the answer. */
  onCancel(inv: ServerTransaction): void {
    const h = this.c.table.forInvite(inv);
    if (!h || h.state === 'up') return;
    inv.respond(487);
    void this.c.teardown.hangup(h, `${h.phone.number} cancelled`, false, true);
  }

  /** The far end re-offers: re-INVITE our phone (music on hold when it is put on hold), report its answer. */
  async reofferToPhone(h: HalfCall, offer: SessionDescription): Promise<void> {
    const { media, peer } = this.c;
    const dir = audioOf(offer).direction;
    const nowHeld = dir === 'sendonly' || dir === 'inactive';
    let toPhone: SessionDescription | undefined;
    if (nowHeld && !h.held) {
      h.heldByFar(true);
      toPhone = await media.startMusicOnHold(h);
    } else if (!nowHeld && h.held) {
      h.heldByFar(false);
      const moh = await media.stopMusicOnHold(h);
      this.c.log.info(
        { call: h.call, phone: h.phone.number, moh: moh?.resource ?? null },
        'phone resumed: music on hold released',
      );
    }
    const onHoldMusic = toPhone !== undefined;
    // Through the dialog's queue: one INVITE transaction at a time towards the phone.
    const outcome = await this.c.phone.reinvite(h, toPhone ?? media.phoneView(h, offer));
    if (!outcome.ok) return void peer.signal(h, { op: 'reanswer', call: h.call, status: outcome.status });
    let sdp: string | undefined;
    try {
      if (onHoldMusic) {
        // The phone now listens to the MOH stream; the holder is answered "inactive".
        media.mohAnswered(h, outcome.audio);
        sdp = writeSdp(withDirection(h.toFar(outcome.sdp), 'inactive')).toString();
      } else sdp = writeSdp(media.farView(h, outcome.sdp)).toString();
    } catch {
      sdp = undefined;
    }
    void peer.signal(h, { op: 'reanswer', call: h.call, status: sdp ? 200 : 488, ...(sdp ? { sdp } : {}) });
  }

  /** The far end answered a re-offer: our phone's pending re-INVITE, or our own re-offer after a re-home. */
  reanswered(h: HalfCall, s: Extract<CallSignal, { op: 'reanswer' }>): CallSignalReply {
    const tx = h.pendingReinvite;
    h.pendingReinvite = undefined;
    if (!tx && h.selfReoffer) {
      // The answer to our own re-offer: learn where the far end receives (and move our phone there when the far end is new).
      const movePhone = h.selfReoffer === 'phone';
      h.selfReoffer = false;
      if (s.sdp && s.status < 300) {
        const view = this.c.media.phoneView(h, parseSdp(s.sdp));
        if (movePhone) void this.c.phone.reinvite(h, view);
      }
      return { ok: true };
    }
    if (!tx) return { ok: false, status: 481, reason: 'no re-INVITE pending' };
    if (s.status >= 300 || !s.sdp) tx.respond(s.status >= 300 ? s.status : 500);
    else tx.respond(200, this.c.phone.answerOpts(h, this.c.media.phoneView(h, parseSdp(s.sdp))));
    return { ok: true };
  }
}
