// A callee that cannot do SRTP but is not marked `srtp: off`: offered
// RTP/SAVP (its caller offered SRTP), it refuses (488 or 606). Unless the
// caller requires encryption or the callee must have it, the caller's half
// puts an MTP at the far end of its leg that keeps SRTP towards the caller
// and speaks RTP to the callee, and asks again, as CodecFallback does for
// codecs; the caller only hears ringing a moment later. Config can say it
// up front (`srtp: off`) and save the round trip.
import type { SessionDescription } from 'sdp-transform';
import { writeSdp } from '../sip/sdp.ts';
import type { CallContext } from './callContext.ts';
import type { HalfCall } from './halfCall.ts';
import { NoResource } from './mediaPath.ts';

const REFUSALS = new Set([488, 606]);

export class SrtpFallback {
  constructor(private readonly c: CallContext) {}

  /** True when a new attempt in clear towards the callee is under way. */
  async retry(h: HalfCall, status: number): Promise<boolean> {
    if (
      !REFUSALS.has(status) ||
      h.role !== 'caller' ||
      h.srtpRetried ||
      !h.peerNode ||
      !h.lastPhoneSdp ||
      !h.sdes.far.on
    )
      return false;
    const callee = this.c.model.phones.get(h.far);
    if (h.phone.srtp === 'required' || !callee || callee.srtp !== 'optional') return false;
    h.srtpRetried = true;
    // The MTP's far leg opens in clear; without one the boundary stays as it was.
    h.sdes.far.on = false;
    const why = `SRTP to RTP: ${h.far} refused RTP/SAVP (${status}), ${h.phone.number} does not require encryption`;
    try {
      if (await this.c.media.insert(h, 'mtp', why)) return this.again(h, status, h.lastPhoneSdp);
    } catch (err) {
      if (!(err instanceof NoResource)) throw err;
      this.c.log.warn({ call: h.call, err: err.message }, 'SRTP refused by the callee and no MTP to convert');
    }
    h.sdes.far.on = true;
    return false;
  }

  private async again(h: HalfCall, status: number, offer: SessionDescription): Promise<boolean> {
    this.c.log.info(
      { call: h.call, caller: h.phone.number, callee: h.far, status },
      'callee refused SRTP: retrying in clear through an MTP',
    );
    const reply = await this.c.peer.setupAgain(h, writeSdp(this.c.media.farView(h, offer)).toString());
    if (!reply.ok) await this.c.teardown.fail(h, reply.status, reply.reason, false);
    return true;
  }
}
