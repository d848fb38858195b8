// A device in one of our calls was lost (its node died or restarted, or an
// operator took it): the call takes the next device its MRGL offers and the
// media moves to it; a held phone's music on hold moves to the next MOH
// server. A call that cannot get a replacement ends rather than stay up
// without media.
import type { Allocation } from '../mrm/mediaResourceManager.ts';
import { writeSdp } from '../sip/sdp.ts';
import type { CallContext } from './callContext.ts';
import type { HalfCall, Insert } from './halfCall.ts';

export class Rehoming {
  constructor(private readonly c: CallContext) {}

  /**
   * Takes the next device the MRGL offers, wires it in, and moves the media
   * to it (re-INVITE the phone when the phone-facing address changed,
   * re-offer to the far end when the far-facing one did). The call stays up.
   */
  async rehome(lost: Allocation, reason: string): Promise<void> {
    const halves = this.c.table.all();
    const held = halves.find((x) => x.moh?.id === lost.id);
    if (held) return this.rehomeMusicOnHold(held, reason);
    const h = halves.find((x) => x.inserts.some((i) => i.allocation.id === lost.id));
    if (!h || h.state === 'ended') return;
    const at = h.inserts.findIndex((i) => i.allocation.id === lost.id);
    const old = h.inserts[at]!;
    const { log, teardown } = this.c;
    log.warn({ call: h.call, type: old.type, resource: old.allocation.resource, reason }, 'media resource lost: re-homing the call');
    let ins: Insert | undefined;
    try {
      ins = await this.c.media.openInsert(h, old.type, old.why, { ...old.ask, preferred: undefined }, at);
    } catch (err) {
      // A call shown as up with no media is worse than an ended one.
      log.error({ call: h.call, type: old.type, err: (err as Error).message }, 'no replacement device: ending the call');
      return teardown.hangup(h, `${old.type} lost (${reason}) and no replacement`, false);
    }
    if (!ins) return teardown.hangup(h, `${old.type} lost (${reason}) and no replacement`, false);
    if (h.state !== 'up') return;
    if (old.ask.codecs) {
      ins.phoneCodecs = old.phoneCodecs;
      ins.farCodecs = old.farCodecs;
    }
    h.inserts[at] = ins;
    log.info({ call: h.call, type: ins.type, resource: ins.allocation.resource, node: ins.allocation.node }, 'call re-homed');
    if (at === 0) {
      const offer =
        ins.legs === 1 || !h.lastFarSdp
          ? h.own(ins.phoneSide, h.phoneAudio?.codecs.slice(0, 1) ?? ['PCMU'], 'sendrecv')
          : h.toPhone(h.lastFarSdp);
      this.c.phone.reinvite(h, offer);
    }
    if (at === h.inserts.length - 1 && ins.legs === 2 && h.peerNode && h.lastPhoneSdp) {
      h.selfReoffer = 'devices';
      await this.c.peer.signal(h, { op: 'reoffer', call: h.call, sdp: writeSdp(h.toFar(h.lastPhoneSdp)).toString() });
    }
  }

  /** The MOH device of a held phone was lost: the next MOH device of its MRGL plays on. */
  private async rehomeMusicOnHold(h: HalfCall, reason: string): Promise<void> {
    this.c.log.warn({ call: h.call, phone: h.phone.number, resource: h.moh?.resource, reason }, 'music on hold lost: re-homing');
    h.moh = undefined;
    if (!h.held || h.state !== 'up') return;
    const offer = await this.c.media.startMusicOnHold(h);
    if (!offer) return;
    this.c.phone.reinvite(h, offer, (a) => this.c.media.mohAnswered(h, a));
  }
}
