// Codecs learnt, not configured: when the callee's phone refuses the
// caller's codecs (488 or 606) and the caller's leg has no transcoder yet,
// the caller's half takes one from the caller's MRGL and offers the callee
// every other codec it can transcode to, transparently to the caller (who
// only hears ringing a moment later). The transcoder's far leg takes the
// codec the callee answers with. A callee that answers with a codec the
// caller did not offer (it should not, some do) gets a transcoder too: the
// far end is re-offered the transcoder, the caller answered through it.
import type { Codec } from '../config/schema.ts';
import { MEDIA_CODECS } from '../media/codec.ts';
import type { SessionDescription } from 'sdp-transform';
import { audioOf, writeSdp } from '../sip/sdp.ts';
import type { CallContext } from './callContext.ts';
import type { HalfCall, Insert } from './halfCall.ts';
import { NoResource } from './mediaPath.ts';

/** Answers that mean "not these codecs" (RFC 3261 21.4.26, 21.6.4). */
const CODEC_REFUSALS = new Set([488, 606]);
/** What to offer a callee first when nothing is known of it: narrowband G.711 first, then wideband. */
const PREFERENCE: readonly Codec[] = ['PCMA', 'PCMU', 'G722', 'OPUS', 'L16'];

export class CodecFallback {
  constructor(private readonly c: CallContext) {}

  /**
   * The callee answered with none of the caller's codecs: put a transcoder
   * between them before answering the caller. True when one was put in (the
   * caller is then answered through it by the usual path).
   */
  async afterAnswer(h: HalfCall, farSdp: SessionDescription): Promise<boolean> {
    if (h.role !== 'caller' || !h.peerNode || !h.lastPhoneSdp || h.inserts.some((i) => i.type === 'transcoder'))
      return false;
    const offered = h.phoneAudio?.codecs ?? [];
    const answered = audioOf(farSdp).codecs;
    if (answered.length === 0 || answered.some((c) => offered.includes(c))) return false;
    const callerCodec = offered.find((c) => MEDIA_CODECS.includes(c));
    const farCodec = answered.find((c) => MEDIA_CODECS.includes(c));
    if (!callerCodec || !farCodec) return false;
    try {
      const ins = await this.c.media.insert(
        h,
        'transcoder',
        `${h.far} answered ${answered.join(',')}, not offered by ${h.phone.number}`,
        {
          requirement: { codecs: [callerCodec, farCodec] },
          codecs: [callerCodec, farCodec],
        },
      );
      if (!ins) return false;
      ins.phoneCodecs = [callerCodec];
      ins.farCodecs = [farCodec];
    } catch (err) {
      if (err instanceof NoResource) {
        this.c.log.warn(
          { call: h.call, err: err.message },
          'callee answered a codec the caller cannot take, and no transcoder to help',
        );
        return false;
      }
      throw err;
    }
    this.c.log.info(
      { call: h.call, caller: h.phone.number, callee: h.far, answered },
      'callee answered a codec not offered: transcoding',
    );
    // The far end now sends to (and hears from) the transcoder.
    h.selfReoffer = 'devices';
    void this.c.peer.signal(h, { op: 'reoffer', call: h.call, sdp: writeSdp(h.toFar(h.lastPhoneSdp)).toString() });
    return true;
  }

  /**
   * The callee refused our offer with `status`: when a transcoder can help,
   * put one in and send the setup again. True when a new attempt is under way.
   */
  async retry(h: HalfCall, status: number): Promise<boolean> {
    if (!CODEC_REFUSALS.has(status) || h.role !== 'caller' || !h.peerNode || !h.lastPhoneSdp) return false;
    const planned = h.inserts.find((i) => i.type === 'transcoder' && i.learnt);
    if (planned && !h.learntRetried) return this.withoutLearnt(h, planned, status);
    if (h.codecRetried || h.inserts.some((i) => i.type === 'transcoder')) return false;
    h.codecRetried = true;
    const offered = h.phoneAudio?.codecs ?? [];
    const callerCodec = offered.find((c) => MEDIA_CODECS.includes(c));
    if (!callerCodec) return false;
    // Every codec some transcoder of the cluster turns the caller's into, that the caller did not offer.
    const reachable = new Set(
      [...this.c.model.resources.values()]
        .filter((r) => r.type === 'transcoder' && r.codecs.includes(callerCodec))
        .flatMap((r) => r.codecs),
    );
    const candidates = PREFERENCE.filter((c) => reachable.has(c) && !offered.includes(c) && MEDIA_CODECS.includes(c));
    if (candidates.length === 0) return false;
    const why = `${h.far} refused ${offered.join(',')} (${status}): transcoding to ${candidates.join('/')}`;
    try {
      const ins = await this.c.media.insert(h, 'transcoder', why, {
        requirement: { codecs: [callerCodec, candidates[0]!] },
        codecs: [callerCodec, candidates[0]!],
      });
      if (!ins) return false;
      // Offer the callee what this very device can do; its far leg follows the callee's answer.
      const device = this.c.model.resources.get(ins.allocation.resource);
      ins.phoneCodecs = [callerCodec];
      ins.farCodecs = candidates.filter((c) => device?.codecs.includes(c));
    } catch (err) {
      if (err instanceof NoResource) {
        this.c.log.warn({ call: h.call, err: err.message }, 'codecs refused and no transcoder to help');
        return false;
      }
      throw err;
    }
    this.c.log.info(
      { call: h.call, caller: h.phone.number, callee: h.far, status, offer: h.inserts.at(-1)?.farCodecs },
      'callee refused the codecs: retrying through a transcoder',
    );
    const reply = await this.c.peer.setupAgain(h, writeSdp(this.c.media.farView(h, h.lastPhoneSdp)).toString());
    if (!reply.ok) await this.c.teardown.fail(h, reply.status, reply.reason, false);
    return true;
  }

  /**
   * The transcoder was planned from codecs learnt of the callee, and the
   * callee refused them: they were out of date (another device registered
   * as the number, say). Offer the caller's own codecs once, without it; a
   * second refusal gets the usual transcoder retry.
   */
  private async withoutLearnt(h: HalfCall, planned: Insert, status: number): Promise<boolean> {
    h.learntRetried = true;
    h.inserts.splice(h.inserts.indexOf(planned), 1);
    await planned.allocation.release();
    this.c.log.info(
      { call: h.call, caller: h.phone.number, callee: h.far, status, learnt: planned.farCodecs },
      "callee refused the codecs learnt of it: offering the caller's own",
    );
    const reply = await this.c.peer.setupAgain(h, writeSdp(this.c.media.farView(h, h.lastPhoneSdp!)).toString());
    if (!reply.ok) await this.c.teardown.fail(h, reply.status, reply.reason, false);
    return true;
  }
}
