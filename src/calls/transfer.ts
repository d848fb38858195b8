// Blind transfer (REFER, RFC 3515): a phone in a call refers the other party
// to a third number. The referring phone's half answers 202 and reports
// progress by NOTIFY (message/sipfrag); the other party's half, on its own
// node, puts its phone on hold with music, lets go of the resources of the
// old pair, becomes the caller of a new call to the target (resources
// planned for the new pair) and, when the target answers, moves its phone's
// media there. The referring phone's half then ends without ending the
// other half's call.
import { randomUUID } from 'node:crypto';
import { parseNameAddr, parseUri } from '../sip/grammar.ts';
import { writeSdp } from '../sip/sdp.ts';
import type { ServerTransaction } from '../sip/transactions.ts';
import type { CallContext } from './callContext.ts';
import type { CallSetup } from './callSetup.ts';
import type { HalfCall } from './halfCall.ts';
import { NoResource } from './mediaPath.ts';
import type { CallSignal, CallSignalReply } from './signals.ts';

const sipfrag = (status: string) => ({ type: 'message/sipfrag;version=2.0', data: Buffer.from(`SIP/2.0 ${status}\r\n`) });

export class Transfer {
  constructor(
    private readonly c: CallContext,
    private readonly setup: CallSetup,
  ) {}

  /** Our phone refers the other party elsewhere. */
  async onRefer(tx: ServerTransaction): Promise<void> {
    const h = this.c.phone.inDialog(tx);
    if (!h) return;
    const referTo = tx.request.headers.get('refer-to');
    const target = parseUri(parseNameAddr(referTo ?? '')?.uri ?? '')?.user;
    if (!referTo || !target) return void tx.respond(400, { reason: 'Bad Request (Refer-To with a number is required)' });
    if (/replaces=/i.test(referTo)) return void tx.respond(501, { reason: 'Not Implemented (attended transfer, Replaces)' });
    if (h.state !== 'up' || !h.peerNode) return void tx.respond(488, { reason: 'Not Acceptable Here (no two-party call to transfer)' });
    if (!this.c.model.phones.has(target)) return void tx.respond(404, { reason: `Not Found (no number ${target})` });
    tx.respond(202);
    this.notify(h, '100 Trying', false);
    this.c.log.info({ call: h.call, phone: h.phone.number, transferee: h.far, target }, 'blind transfer');
    const reply = await this.c.peer.signal(h, { op: 'transfer', call: h.call, target });
    if (!reply.ok) {
      this.notify(h, `${reply.status} ${reply.reason}`, true);
      return;
    }
    this.notify(h, '200 OK', true);
    // The other party now belongs to a new call: end ours without telling it.
    await this.c.teardown.hangup(h, `transferred ${h.far} to ${target}`, true);
  }

  /** The other half referred our phone to `target`: hold it with music, call the target for it. */
  async onTransfer(h: HalfCall, s: Extract<CallSignal, { op: 'transfer' }>): Promise<CallSignalReply> {
    const { model, mrm, media, table, peer } = this.c;
    const target = model.phones.get(s.target);
    if (!target) return { ok: false, status: 404, reason: `Not Found (no number ${s.target})` };
    if (!h.lastPhoneSdp || h.state !== 'up') return { ok: false, status: 488, reason: 'Not Acceptable Here (the call is not established)' };
    // The old pair's devices go; the transferee hears the transferor's hold music while it waits.
    await Promise.all(h.inserts.map((i) => mrm.release(i.allocation.id)));
    h.inserts = [];
    if (!h.held) {
      h.held = true;
      const offer = await media.startMusicOnHold(h);
      const moh = h.moh;
      if (offer) this.c.phone.reinvite(h, offer, (a) => moh && void mrm.media(moh.id, { legs: [{ remote: { address: a.address, port: a.port } }] }).catch(() => undefined));
    }
    table.rekey(h, (x) => {
      x.call = randomUUID();
      x.role = 'caller';
      x.far = target.number;
      x.peerNode = target.node;
      x.transferring = true;
      x.codecRetried = false;
    });
    try {
      if (h.phoneAudio) await this.setup.planCallerLeg(h, h.phoneAudio, target);
    } catch (err) {
      if (!(err instanceof NoResource)) throw err;
      await this.c.teardown.hangup(h, `transfer: ${err.message}`, true);
      return { ok: false, status: 503, reason: 'Service Unavailable (no resource for the new call)' };
    }
    const reply = await peer.signal(h, {
      op: 'setup',
      call: h.call,
      caller: { number: h.phone.number, node: this.c.node },
      callee: target.number,
      offer: writeSdp(media.farView(h, h.lastPhoneSdp)).toString(),
    });
    if (!reply.ok) {
      await this.c.teardown.hangup(h, `transfer to ${target.number} refused: ${reply.reason}`, true);
      return reply;
    }
    return { ok: true };
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
