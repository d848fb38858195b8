// A device in one of our calls was lost (its node died or restarted, or an
// operator took it): the call takes the next device its MRGL offers and the
// media moves to it; a held phone's music on hold moves to the next MOH
// server. A call that cannot get a replacement ends rather than stay up
// without media.
//
// Make before break: when a device's node only goes silent, its media may
// well still flow, so nothing is torn down; but the replacement is allocated
// at once and held on standby, so that if the node is declared down the call
// moves without waiting for an allocation, and if it is heard again the
// standby is released.
import type { Allocation } from '../mrm/mediaResourceManager.ts';
import { writeSdp } from '../sip/sdp.ts';
import type { CallContext } from './callContext.ts';
import type { HalfCall, Insert } from './halfCall.ts';
import { errorMessage } from '../errors.ts';

/** (read after an await: the half may have ended meanwhile) */
const ended = (h: HalfCall): boolean => h.state === 'ended';

export class Rehoming {
  constructor(private readonly c: CallContext) {}

  /** `node` went silent: a standby replacement for every device of ours it hosts (the media stays where it is). */
  async prepare(node: string): Promise<void> {
    for (const h of this.c.table.all()) {
      if (h.state === 'ended') continue;
      for (const ins of h.inserts) {
        if (ins.allocation.node !== node || h.standby.has(ins.allocation)) continue;
        try {
          const reserve = await this.c.mrm.allocate({
            phone: h.phone.number,
            type: ins.type,
            resolvedMrgl: h.mrgl,
            requirement: { ...ins.ask.requirement, ...(ins.phoneSide.key || ins.farSide.key ? { srtp: true } : {}) },
            holder: { kind: 'call', call: h.call },
          });
          // (the call may have ended, or the device been replaced, while the allocation was under way)
          if (ended(h) || !h.inserts.includes(ins)) await reserve.release();
          else {
            h.standby.set(ins.allocation, reserve);
            this.c.log.info(
              {
                call: h.call,
                type: ins.type,
                silent: ins.allocation.resource,
                standby: reserve.resource,
                device_node: reserve.node,
              },
              'device node silent: replacement held on standby',
            );
          }
        } catch (err) {
          this.c.log.warn(
            { call: h.call, type: ins.type, resource: ins.allocation.resource, err: errorMessage(err) },
            'device node silent: no standby replacement',
          );
        }
      }
    }
  }

  /** `node` is heard again: the standby replacements of its devices go back. */
  async standDown(node: string): Promise<void> {
    for (const h of this.c.table.all()) {
      for (const ins of h.inserts) {
        const reserve = ins.allocation.node === node ? h.standby.get(ins.allocation) : undefined;
        if (!reserve) continue;
        h.standby.delete(ins.allocation);
        await reserve
          .release()
          .catch((err: unknown) => this.c.log.warn({ call: h.call, err: errorMessage(err) }, 'standby not released'));
        this.c.log.info(
          { call: h.call, resource: ins.allocation.resource, standby: reserve.resource },
          'device node heard again: standby released',
        );
      }
    }
  }

  /**
   * Takes the next device the MRGL offers, wires it in, and moves the media
   * to it (re-INVITE the phone when the phone-facing address changed,
   * re-offer to the far end when the far-facing one did). The call stays up.
   */
  async rehome(lost: Allocation, reason: string): Promise<void> {
    const halves = this.c.table.all();
    const held = halves.find((x) => x.moh === lost);
    if (held) return this.rehomeMusicOnHold(held, reason);
    const h = halves.find((x) => x.inserts.some((i) => i.allocation === lost));
    if (!h || h.state === 'ended') return;
    const at = h.inserts.findIndex((i) => i.allocation === lost);
    const old = h.inserts[at]!;
    const { log, teardown } = this.c;
    log.warn(
      { call: h.call, type: old.type, resource: old.allocation.resource, reason },
      'media resource lost: re-homing the call',
    );
    let ins: Insert | undefined;
    // A standby made while the node was silent: the call moves to it without an allocation now.
    const reserve = h.standby.get(lost);
    h.standby.delete(lost);
    try {
      ins = await this.c.media.openInsert(h, old.type, old.why, { ...old.ask, preferred: undefined }, at, reserve);
    } catch (err) {
      // A call shown as up with no media is worse than an ended one.
      log.error({ call: h.call, type: old.type, err: errorMessage(err) }, 'no replacement device: ending the call');
      return teardown.hangup(h, `${old.type} lost (${reason}) and no replacement`, false);
    }
    if (!ins) return teardown.hangup(h, `${old.type} lost (${reason}) and no replacement`, false);
    if (h.state !== 'up') return;
    if (old.ask.codecs) {
      ins.phoneCodecs = old.phoneCodecs;
      ins.farCodecs = old.farCodecs;
    }
    h.inserts[at] = ins;
    log.info(
      { call: h.call, type: ins.type, resource: ins.allocation.resource, device_node: ins.allocation.node },
      'call re-homed',
    );
    if (at === 0) {
      const offer =
        ins.legs === 1 || !h.lastFarSdp
          ? h.own(ins.phoneSide, h.phoneAudio?.codecs.slice(0, 1) ?? ['PCMU'], 'sendrecv')
          : h.toPhone(h.lastFarSdp);
      void this.c.phone.reinvite(h, offer);
    }
    if (at === h.inserts.length - 1 && ins.legs === 2 && h.peerNode && h.lastPhoneSdp) {
      h.selfReoffer = 'devices';
      await this.c.peer.signal(h, { op: 'reoffer', call: h.call, sdp: writeSdp(h.toFar(h.lastPhoneSdp)).toString() });
    }
  }

  /** The MOH device of a held phone was lost: the next MOH device of its MRGL plays on. */
  private async rehomeMusicOnHold(h: HalfCall, reason: string): Promise<void> {
    this.c.log.warn(
      { call: h.call, phone: h.phone.number, resource: h.moh?.resource, reason },
      'music on hold lost: re-homing',
    );
    h.moh = undefined;
    if (!h.held || h.state !== 'up') return;
    const offer = await this.c.media.startMusicOnHold(h);
    if (!offer) return;
    void this.c.phone.reinvite(h, offer).then((r) => {
      if (r.ok) this.c.media.mohAnswered(h, r.audio);
    });
  }
}
