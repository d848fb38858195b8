// Announcements: a caller whose call cannot go through hears why (a prompt
// of an annunciator from its MRGL, as early media: 183 Session Progress
// with SDP) before the final answer. Without an annunciator that has the
// prompt, or without media on its node, the call just fails as before.
import type { PromptName } from '../config/schema.ts';
import { MEDIA_CODECS } from '../media/codec.ts';
import type { Allocation } from '../mrm/mediaResourceManager.ts';
import type { CallContext } from './callContext.ts';
import type { HalfCall } from './halfCall.ts';

/** A prompt longer than this is cut: the caller is waiting for an answer. */
const MAX_PROMPT_MS = 15_000;

export class Announcements {
  constructor(private readonly c: CallContext) {}

  /** Plays `prompt` to the caller of `h`, then ends the half with `status`. */
  async failWith(h: HalfCall, prompt: PromptName, status: number, reason: string): Promise<void> {
    await this.play(h, prompt).catch((err: unknown) => this.c.log.warn({ call: h.call, prompt, err: (err as Error).message }, 'announcement not played'));
    await this.c.teardown.fail(h, status, reason);
  }

  private async play(h: HalfCall, prompt: PromptName): Promise<void> {
    if (!h.invite || !h.phoneRemote || h.state === 'ended') return;
    let a: Allocation;
    try {
      a = await this.c.mrm.allocate({
        phone: h.phone.number,
        type: 'annunciator',
        resolvedMrgl: h.mrgl,
        requirement: { prompt },
        holder: { kind: 'call', call: h.call },
      });
    } catch {
      return; // no annunciator with that prompt: the caller gets the answer without it
    }
    try {
      const codec = h.phoneAudio?.codecs.find((c) => MEDIA_CODECS.includes(c)) ?? 'PCMU';
      const r = await this.c.mrm.media(a.id, { legs: [{ codec, remote: h.phoneRemote }], prompt });
      // (the caller may have hung up meanwhile: a transaction answers once, so this is then a no-op)
      h.invite.respond(183, this.c.phone.answerOpts(h, h.own(r.legs[0]!, [codec], 'sendonly')));
      this.c.log.info({ call: h.call, phone: h.phone.number, prompt, annunciator: a.resource, ms: r.duration_ms }, 'playing an announcement');
      await new Promise((res) => setTimeout(res, Math.min(r.duration_ms ?? 0, MAX_PROMPT_MS) + 100));
    } finally {
      await this.c.mrm.release(a.id);
    }
  }
}
