// How a half ends: a call that never got up answers the caller's INVITE
// with an error; an established one sends its phone a BYE (or CANCELs the
// INVITE still ringing); the other half is told unless it is the one that
// asked; the phone's line is freed and every resource of the half released.
import type { Logger } from 'pino';
import type { PhoneLines } from './phoneLink.ts';
import type { MediaResourceManager } from '../mrm/mediaResourceManager.ts';
import type { SipStack } from '../sip/transactions.ts';
import type { CallTable } from './callTable.ts';
import type { HalfCall } from './halfCall.ts';
import type { PeerLink } from './peerLink.ts';

import type { CallDetailRecord } from '../cluster/messages.ts';
import { qualityOf, recordOf } from './callRecord.ts';

export interface TeardownDeps {
  stack: SipStack;
  phones: PhoneLines;
  mrm: MediaResourceManager;
  table: CallTable;
  peer: PeerLink;
  log: Logger;
  /** the node's name, in its call detail records */
  node: string;
  /** keeps the call detail record of a half that ended */
  record(r: CallDetailRecord): void;
}

export class Teardown {
  constructor(private readonly d: TeardownDeps) {}

  /** Ends a call that never got up, answering the caller's INVITE. */
  async fail(h: HalfCall, status: number, reason: string, tellPeer = true): Promise<void> {
    if (h.state === 'ended') return;
    const wasRinging = h.state === 'ringing';
    const done = this.cleanup(h, reason);
    h.caller?.invite?.respond(status, { reason, toTag: h.dialog?.localTag });
    if (tellPeer && wasRinging) await this.d.peer.signal(h, { op: 'hangup', call: h.call, reason });
    await done;
  }

  /**
   * Ends this half: the phone gets a BYE (or its INVITE an error, or our
   * INVITE a CANCEL) unless it is the one that hung up; the other half is
   * told unless it is the one that asked.
   */
  async hangup(h: HalfCall, reason: string, byPeer: boolean, byPhone = false): Promise<void> {
    if (h.state === 'ended') return;
    const dialog = h.dialog;
    if (!byPhone && dialog) {
      if (h.state === 'up') this.d.stack.request(dialog.request('BYE'), dialog.peer, () => undefined);
      else if (h.caller) h.caller.invite?.respond(byPeer ? 487 : 503, { toTag: dialog.localTag });
      else if (h.callee) {
        const callee = h.callee;
        callee.cancelWanted = true;
        if (callee.gotProvisional && callee.outInvite) this.d.stack.cancel(callee.outInvite, dialog.peer);
      }
    }
    const done = this.cleanup(h, reason);
    if (!byPeer && h.peerNode) await this.d.peer.signal(h, { op: 'hangup', call: h.call, reason });
    await done;
  }

  /** Forgets the half, frees its phone's line and releases its resources. */
  async cleanup(h: HalfCall, reason: string): Promise<void> {
    if (h.state === 'ended') return;
    const wasUp = h.state === 'up';
    // (the record names the devices before they go; it is kept once they have said how their media ended)
    const record = recordOf(h, this.d.node, reason);
    const held = h.allocations();
    h.end();
    clearTimeout(h.callee?.ringTimer);
    this.d.table.remove(h);
    // The line is free before anything is awaited: a phone that dials again
    // right after our 200 to its BYE must not find itself busy.
    const freed = this.d.phones.get(h.phone.number)?.deliver({ op: 'free', call: h.key });
    // A participant of an ad hoc conference tells the conference's owner (which may pair the last two).
    if (h.conference)
      void this.d.peer.send(h.conference.owner, {
        op: 'conference_left',
        room: h.conference.room,
        call: h.call,
        role: h.role,
        node: this.d.peer.node,
      });
    await Promise.all(held.map((a) => a.release()));
    const quality = qualityOf(held);
    this.d.record(quality.length ? { ...record, quality } : record);
    await freed;
    this.d.log.info(
      {
        call: h.call,
        role: h.role,
        phone: h.phone.number,
        reason,
        was_up: wasUp,
        duration_s: Math.round((Date.now() - h.since) / 100) / 10,
      },
      'call half ended',
    );
  }
}
