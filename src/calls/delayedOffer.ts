// Delayed offer: an INVITE without SDP (RFC 3261 13.2.1; RFC 3264 allows
// the offer in the 2xx and the answer in the ACK), as carriers, SBCs and
// older PBXs send. The caller's half cannot know where its party receives
// nor what it takes, so it anchors the media on a relay from the party's
// MRGL: the MTP (or the transcoder the call needs anyway) gives the far end
// an early offer at once, with the device's address and the codecs the
// party's config lists (CUCM does the same with "MTP required" on a SIP
// trunk). When the far end answers, our 200 carries the offer (the device's
// other side); the party's ACK brings its answer, and the device learns
// where to send. A party whose config requires SRTP cannot be served so
// (no keys known): 488.
import type { SessionDescription } from 'sdp-transform';
import type { PhoneSpec } from '../config/model.ts';
import { TELEPHONE_EVENT } from '../media/rtpFormats.ts';
import type { SipRequest } from '../sip/message.ts';
import { audioOf, parseSdp, type AudioInfo } from '../sip/sdp.ts';
import type { CallContext } from './callContext.ts';
import type { HalfCall } from './halfCall.ts';
import { errorMessage } from '../errors.ts';

export class DelayedOffer {
  constructor(private readonly c: CallContext) {}

  /** Why a delayed offer from `caller` cannot be taken (undefined: it can). */
  refusal(caller: PhoneSpec): string | undefined {
    return caller.srtp === 'required'
      ? `${caller.number} requires encrypted media, and an INVITE without SDP carries no keys`
      : undefined;
  }

  /** What the party can receive as its config says (its own SDP comes with the ACK). */
  assumedAudio(caller: PhoneSpec): AudioInfo {
    const events = caller.dtmf.includes('rfc4733');
    return {
      address: '',
      port: 0,
      codecs: [...caller.codecs],
      telephoneEvent: events,
      telephoneEventPt: events ? TELEPHONE_EVENT : undefined,
      direction: 'sendrecv',
      srtp: undefined,
    };
  }

  /** After the leg's devices were planned: a relay anchors the media (an MTP of the party's MRGL when none was needed). */
  async anchor(h: HalfCall): Promise<void> {
    if (h.inserts.some((i) => i.legs === 2)) return;
    await this.c.media.insert(h, 'mtp', 'delayed offer: the INVITE had no SDP', {});
  }

  /** The offer the far end gets: the anchoring device's far side, with the party's codecs (as the last device converts them). */
  farOffer(h: HalfCall, assumed: AudioInfo): SessionDescription {
    const last = h.inserts[h.inserts.length - 1]!;
    const codecs = h.inserts.find((i) => i.farCodecs)?.farCodecs ?? assumed.codecs;
    return h.own(last.farSide, codecs, 'sendrecv', h.farEventPt, 'far');
  }

  /**
   * The party's ACK to our 200 (which carried the offer): its SDP is the
   * answer, telling the first device where the party receives. An ACK
   * without SDP leaves the call silent towards the party (it did not answer
   * our offer), and is logged.
   */
  onAck(h: HalfCall, ack: SipRequest): void {
    const caller = h.caller;
    if (!caller?.delayedOffer) return;
    caller.delayedOffer = false;
    let sdp: SessionDescription;
    try {
      sdp = parseSdp(ack.body);
      h.notePhone(audioOf(sdp));
    } catch (err) {
      this.c.log.warn(
        { call: h.call, phone: h.phone.number, err: errorMessage(err) },
        'delayed offer: the ACK carried no usable answer; the call is silent towards the party',
      );
      return;
    }
    h.lastPhoneSdp = sdp;
    this.c.learnCodecs(h.phone.number, audioOf(sdp).codecs, 'answer');
    void this.c.media
      .syncMedia(h)
      .catch((err: unknown) =>
        this.c.log.warn(
          { call: h.call, err: errorMessage(err) },
          'delayed offer: the device did not learn where the party is',
        ),
      );
  }
}
