// The SIP side of a half towards its own phone: our Contact, answers to the
// phone's INVITE, our own re-INVITEs, ACKs of retransmitted 2xx, and the
// rule that in-dialog requests come from the dialog's peer only.
import type { SessionDescription } from 'sdp-transform';
import type { Logger } from 'pino';
import type { PhoneProcess } from '../devices/phoneProcess.ts';
import type { SipResponse } from '../sip/message.ts';
import { audioOf, parseSdp, writeSdp, type AudioInfo } from '../sip/sdp.ts';
import type { ResponseOptions, ServerTransaction, SipStack } from '../sip/transactions.ts';
import type { CallTable } from './callTable.ts';
import type { Dialog } from './dialog.ts';
import type { HalfCall, Rekey } from './halfCall.ts';
import type { MediaPath } from './mediaPath.ts';
import { ALLOW } from './sipMethods.ts';

/** The phone processes of this node, as call control reads them. */
export type PhoneLines = Pick<ReadonlyMap<string, PhoneProcess>, 'get' | 'has'>;

export interface PhoneLinkDeps {
  stack: SipStack;
  phones: PhoneLines;
  table: CallTable;
  media: MediaPath;
  /** host:port this node writes in Contact */
  sipAddress: string;
  /** host:port of SIP over TLS, when the node has it */
  sipTlsAddress?: string | undefined;
  log: Logger;
}

/** What the phone made of one of our re-INVITEs. */
export type ReinviteOutcome = { ok: true; audio: AudioInfo; sdp: SessionDescription } | { ok: false; status: number };

/** 491s (crossed re-INVITEs) taken before a re-INVITE counts as refused */
const MAX_GLARE_RETRIES = 2;

export class PhoneLink {
  private readonly contact: string;
  /** the last re-INVITE queued on each dialog: the next waits for it */
  private readonly reinvites = new WeakMap<Dialog, Promise<void>>();
  /** in-dialog requests refused because they came from someone other than the dialog's peer */
  refusedInDialog = 0;

  constructor(private readonly d: PhoneLinkDeps) {
    this.contact = `sip:tandem@${d.sipAddress}`;
  }

  /**
   * Our Contact for a dialog: with transport=tcp (tls) when the phone talks
   * TCP (TLS), so its in-dialog requests come over the same connection
   * (RFC 3263 would send them over UDP otherwise) and pass the dialog-peer
   * check; a TLS phone is given our TLS address.
   */
  contactFor(peer: { transport: 'UDP' | 'TCP' | 'TLS' }): string {
    if (peer.transport === 'TLS' && this.d.sipTlsAddress) return `sip:tandem@${this.d.sipTlsAddress};transport=tls`;
    return peer.transport === 'TCP' ? `${this.contact};transport=tcp` : this.contact;
  }

  /**
   * Response options towards the phone: our Contact and, with an SDP, the
   * body with the dialog's origin (HalfCall.forPhone).
   */
  answerOpts(h: HalfCall, sdp?: SessionDescription): ResponseOptions {
    const headers: Array<[string, string]> = [
      ['contact', `<${h.dialog!.contact}>`],
      ['allow', ALLOW],
    ];
    if (!sdp) return { toTag: h.dialog!.localTag, headers };
    headers.push(['content-type', 'application/sdp']);
    return { toTag: h.dialog!.localTag, headers, body: writeSdp(h.forPhone(sdp)) };
  }

  /** An in-dialog INVITE to the phone carrying this SDP (with the dialog's origin). */
  invite(h: HalfCall, sdp: SessionDescription) {
    return h.dialog!.request('INVITE', { type: 'application/sdp', data: writeSdp(h.forPhone(sdp)) }, [
      ['allow', ALLOW],
    ]);
  }

  /**
   * A re-INVITE of our own to this leg's phone (new media address); learns
   * where the phone now receives. Queued per dialog: one INVITE transaction
   * at a time (RFC 3261 §14.1), each sent when the one before has its final
   * answer, with the half's state as it is then. A 491 (the phone's own
   * re-INVITE crossed ours) is tried again after RFC 3261's random wait.
   * Resolves with the phone's answer, or its refusal (an answer without
   * usable SDP counts as 488; a half that ended meanwhile as 481).
   */
  reinvite(h: HalfCall, offer: SessionDescription): Promise<ReinviteOutcome> {
    const dialog = h.dialog;
    if (!dialog) return Promise.resolve({ ok: false, status: 481 });
    const turn = (this.reinvites.get(dialog) ?? Promise.resolve()).then(() => this.sendReinvite(h, dialog, offer));
    // The next waits for this one to settle, whatever became of it: a failed turn must not stall the dialog's queue.
    this.reinvites.set(
      dialog,
      turn.then(
        () => undefined,
        () => undefined,
      ),
    );
    return turn;
  }

  private async sendReinvite(h: HalfCall, dialog: Dialog, offer: SessionDescription): Promise<ReinviteOutcome> {
    for (let attempt = 0; ; attempt++) {
      if (h.state === 'ended' || h.dialog !== dialog) return { ok: false, status: 481 };
      const res = await new Promise<SipResponse>((resolve) =>
        this.d.stack.request(this.invite(h, offer), dialog.peer, (r) => {
          if (r.status >= 200) resolve(r);
        }),
      );
      if (res.status === 491 && attempt < MAX_GLARE_RETRIES) {
        // §14.1: the owner of the Call-ID (we called the phone: the callee half) waits 2.1-4 s, the other 0-2 s.
        const [lo, hi] = h.role === 'callee' ? [2100, 4000] : [0, 2000];
        await new Promise((r) => setTimeout(r, lo + Math.random() * (hi - lo)));
        continue;
      }
      if (res.status >= 300) {
        this.d.log.warn({ call: h.call, status: res.status }, 'phone refused the new media address');
        return { ok: false, status: res.status };
      }
      this.d.stack.request(dialog.ackFor(res), dialog.peer, () => undefined);
      try {
        const sdp = parseSdp(res.body);
        const audio = audioOf(sdp);
        h.notePhone(audio);
        h.lastPhoneSdp = sdp;
        void this.d.media.syncMedia(h);
        return { ok: true, audio, sdp };
      } catch {
        this.d.log.warn({ call: h.call }, 'phone answered the new media address without usable SDP');
        return { ok: false, status: 488 };
      }
    }
  }

  /**
   * Gives a half a new identity (a transferred half becomes the caller of a
   * new call, a conference participant a party of a two-party call again):
   * the call table and the phone's line both follow.
   */
  async rekey(h: HalfCall, to: Rekey): Promise<void> {
    const from = h.key;
    this.d.table.rekey(h, to);
    await this.d.phones.get(h.phone.number)?.deliver({ op: 'swap', from, to: h.key });
  }

  /** Takes a line of the phone for this half (false: busy). */
  async seize(h: HalfCall, incoming: boolean): Promise<boolean> {
    const r = await this.d.phones.get(h.phone.number)!.deliver({ op: 'seize', call: h.key, incoming });
    return 'seized' in r && r.seized;
  }

  /** A 2xx to our INVITE came again: ACK it again. */
  reAck(res: SipResponse): void {
    const h = this.d.table.forCallId(res.headers.get('call-id') ?? '');
    if (h?.dialog) this.d.stack.request(h.dialog.ackFor(res), h.dialog.peer, () => undefined);
  }

  /**
   * The call an in-dialog request belongs to, if it comes from the dialog's
   * peer: Call-ID and tags travel in clear, so a stranger who saw them must
   * not be able to hold or end the call. Answers 481 or 403 otherwise.
   */
  inDialog(tx: ServerTransaction): HalfCall | undefined {
    const h = this.d.table.forDialog(tx.request);
    if (!h) {
      tx.respond(481);
      return undefined;
    }
    const peer = h.dialog?.peer;
    const reg = this.d.phones.get(h.phone.number)?.snapshot().registration;
    const same = (a: { address: string; port: number } | undefined) =>
      a !== undefined && a.address === tx.peer.address && a.port === tx.peer.port;
    if (!same(peer) && !same(reg)) {
      this.refusedInDialog++;
      this.d.log.warn(
        { call: h.call, method: tx.request.method, from: `${tx.peer.address}:${tx.peer.port}` },
        'in-dialog request from a stranger refused',
      );
      tx.respond(403, { reason: 'Forbidden (not from the dialog peer)' });
      return undefined;
    }
    return h;
  }
}
