// Announcements: a caller whose call cannot go through hears why (a prompt
// of an annunciator from its MRGL, as early media: 183 Session Progress
// with SDP) before the final answer. Without an annunciator that has the
// prompt, or without media on its node, the call just fails as before.
import type { PromptName } from '../config/schema.ts';
import { MEDIA_CODECS } from '../media/codec.ts';
import type { Allocation } from '../mrm/mediaResourceManager.ts';
import { linkKeys } from './sdes.ts';
import type { CallContext } from './callContext.ts';
import type { HalfCall } from './halfCall.ts';
import { errorMessage } from '../errors.ts';

/** A prompt longer than this is cut: the caller is waiting for an answer. */
const MAX_PROMPT_MS = 15_000;
const wait = (ms: number) => new Promise((res) => setTimeout(res, Math.min(ms, MAX_PROMPT_MS) + 100));

export class Announcements {
  constructor(private readonly c: CallContext) {}

  /** Plays `prompt` to the caller of `h`, then ends the half with `status`. */
  async failWith(h: HalfCall, prompt: PromptName, status: number, reason: string): Promise<void> {
    await this.play(h, prompt).catch((err: unknown) =>
      this.c.log.warn({ call: h.call, prompt, err: errorMessage(err) }, 'announcement not played'),
    );
    await this.c.teardown.fail(h, status, reason);
  }

  private async play(h: HalfCall, prompt: PromptName): Promise<void> {
    const invite = h.caller?.invite;
    if (!invite || !h.phoneRemote || h.state === 'ended') return;
    let a: Allocation;
    try {
      a = await this.c.mrm.allocate({
        phone: h.phone.number,
        type: 'annunciator',
        resolvedMrgl: h.mrgl,
        requirement: { prompt, ...(h.sdes.phone.on ? { srtp: true } : {}) },
        holder: { kind: 'call', call: h.call },
      });
    } catch {
      return; // no annunciator with that prompt: the caller gets the answer without it
    }
    try {
      const codec = h.phoneAudio?.codecs.find((c) => MEDIA_CODECS.includes(c)) ?? 'PCMU';
      const key = h.sdes.phone.newKey();
      const r = await a.media({ legs: [{ codec, remote: h.phoneRemote, ...h.sdes.phone.leg({ key }) }], prompt });
      // (the caller may have hung up meanwhile: a transaction answers once, so this is then a no-op)
      invite.respond(183, this.c.phone.answerOpts(h, h.own({ ...r.legs[0]!, key }, [codec], 'sendonly')));
      this.c.log.info(
        { call: h.call, phone: h.phone.number, prompt, annunciator: a.resource, ms: r.duration_ms },
        'playing an announcement',
      );
      await wait(r.duration_ms ?? 0);
    } finally {
      await a.release();
    }
  }

  /**
   * The entry tone of a meet-me conference: an annunciator from the joining
   * phone's MRGL takes a seat of its own in the room (on the room's bridge)
   * and plays `conference_entry` to everyone there, then both are released.
   * Nothing happens without such an annunciator or a free seat on that bridge.
   */
  async conferenceEntry(h: HalfCall, bridge: string): Promise<void> {
    const ask = { phone: h.phone.number, resolvedMrgl: h.mrgl, holder: { kind: 'call' as const, call: h.call } };
    let ann: Allocation | undefined;
    let seat: Allocation | undefined;
    try {
      // An encrypted call's entry tone reaches the room encrypted too (both keys ours).
      const secure = h.sdes.needed;
      const keys = linkKeys(secure);
      const srtp = secure ? { srtp: true } : {};
      ann = await this.c.mrm.allocate({
        ...ask,
        type: 'annunciator',
        requirement: { prompt: 'conference_entry', ...srtp },
      });
      seat = await this.c.mrm.allocate({
        ...ask,
        type: 'conference_bridge',
        requirement: { codecs: ['PCMU'], ...srtp },
        preferred: { device: bridge, group: `(conference ${h.far})` },
      });
      if (seat.resource !== bridge) return; // another bridge: it would be another room
      const played = await ann.media({ legs: [{ codec: 'PCMU', ...keys?.a }], prompt: 'conference_entry' });
      const inRoom = await seat.media({ legs: [{ codec: 'PCMU', remote: played.legs[0]!, ...keys?.b }], room: h.far });
      await ann.media({ legs: [{ remote: inRoom.legs[0]! }] });
      this.c.log.info({ call: h.call, conference: h.far, annunciator: ann.resource }, 'conference entry tone');
      await wait(played.duration_ms ?? 0);
    } catch (err) {
      this.c.log.debug({ call: h.call, err: errorMessage(err) }, 'no conference entry tone');
    } finally {
      await Promise.all([ann, seat].map((a) => a?.release()));
    }
  }
}
