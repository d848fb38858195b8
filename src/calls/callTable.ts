// The calls of one node: every half by its key, by its dialog (for in-dialog
// requests), by the INVITE that opened it and by the Call-ID of the INVITE we
// sent (for retransmitted 2xx), and the admin view of them.
import type { CallView } from '../cluster/messages.ts';
import type { SipRequest } from '../sip/message.ts';
import type { ServerTransaction } from '../sip/transactions.ts';
import { dialogKeyOf } from './dialog.ts';
import type { HalfCall, Rekey } from './halfCall.ts';
import { key } from './mediaPath.ts';

export type { CallView };

export class CallTable {
  private readonly halves = new Map<string, HalfCall>();
  private readonly byDialog = new Map<string, HalfCall>();
  private readonly byInvite = new Map<ServerTransaction, HalfCall>();
  private readonly byCallId = new Map<string, HalfCall>();

  /** onCallId: a half's dialog Call-ID became known (the SIP ladder binds it to the call) */
  constructor(private readonly onCallId: (call: string, callId: string) => void = () => {}) {}

  /** Adds a half (a caller's dialog is known from its INVITE; a callee's once its phone answers). */
  track(h: HalfCall): void {
    this.halves.set(h.key, h);
    if (h.dialog) this.onCallId(h.call, h.dialog.callId);
    if (h.role === 'caller' && h.dialog) this.byDialog.set(h.dialog.key, h);
    const invite = h.caller?.invite;
    if (invite) this.byInvite.set(invite, h);
  }

  /** The dialog of a callee half, once its phone answered. */
  bindDialog(h: HalfCall): void {
    if (h.dialog) this.byDialog.set(h.dialog.key, h);
  }

  /** The Call-ID of the INVITE we sent a callee's phone (its 2xx may come again). */
  bindCallId(h: HalfCall): void {
    if (!h.dialog) return;
    this.byCallId.set(h.dialog.callId, h);
    this.onCallId(h.call, h.dialog.callId);
  }

  /** Gives a half a new identity (a transferred half becomes the caller of a new call). */
  rekey(h: HalfCall, to: Rekey): void {
    this.halves.delete(h.key);
    const invite = h.caller?.invite;
    if (invite) this.byInvite.delete(invite);
    h.rekey(to);
    this.track(h);
  }

  remove(h: HalfCall): void {
    this.halves.delete(h.key);
    if (h.dialog) {
      this.byDialog.delete(h.dialog.key);
      this.byCallId.delete(h.dialog.callId);
    }
    const invite = h.caller?.invite;
    if (invite) this.byInvite.delete(invite);
  }

  get(key: string): HalfCall | undefined {
    return this.halves.get(key);
  }

  forDialog(req: SipRequest): HalfCall | undefined {
    const k = dialogKeyOf(req);
    return k ? this.byDialog.get(k) : undefined;
  }

  /** A dialog named by its Call-ID and our tag (a Replaces header names it so). */
  forDialogId(callId: string, localTag: string): HalfCall | undefined {
    return this.byDialog.get(`${callId}|${localTag}`);
  }

  forInvite(tx: ServerTransaction): HalfCall | undefined {
    return this.byInvite.get(tx);
  }

  forCallId(callId: string): HalfCall | undefined {
    return this.byCallId.get(callId);
  }

  all(): HalfCall[] {
    return [...this.halves.values()];
  }

  views(): CallView[] {
    return this.all().map((h) => ({
      call: h.call,
      role: h.role,
      phone: h.phone.number,
      far: h.far,
      peer_node: h.peerNode ?? null,
      state: h.state,
      held: h.held,
      holding: h.holding,
      conference: h.conference?.room ?? null,
      since: h.since,
      srtp: { phone: h.sdes.phone.on ? h.sdes.phone.suite : null, far: h.sdes.far.on ? h.sdes.far.suite : null },
      resources: h.allocations().map((a) => {
        const ins = h.inserts.find((i) => i.allocation === a);
        const first = ins === h.inserts[0];
        // A leg facing the phone or the far end uses that boundary's suite; one between two devices, the far end's.
        const suite = (at: { key?: string | undefined } | undefined, side: 'phone' | 'far') =>
          at?.key ? h.sdes[side].suite : null;
        return {
          type: a.type,
          resource: a.resource,
          node: a.node,
          allocation: a.id,
          why: ins?.why ?? 'music on hold',
          phone_side: ins?.media ? key(ins.phoneSide) : null,
          far_side: ins?.media ? key(ins.farSide) : null,
          phone_side_srtp: ins ? suite(ins.phoneSide, first ? 'phone' : 'far') : suite(h.mohSide, 'phone'),
          // a bridge seat has one leg (its far side is its phone side); a relay's second leg faces the far end or the next device
          far_side_srtp: ins ? (ins.legs === 1 ? suite(ins.phoneSide, 'phone') : suite(ins.farSide, 'far')) : null,
        };
      }),
    }));
  }
}
