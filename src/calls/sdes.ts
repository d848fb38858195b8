// SDES (RFC 4568) for one half of a call: whether each of its two SDP
// boundaries (towards its phone, towards the far end) carries SRTP, the suite
// and tag negotiated there, and the key the party on the other side of it
// sends with. Our own keys belong to our endpoints (MediaEndpoint.key): one
// per device leg, made when the leg is opened, so two legs never share a key
// stream. Whoever offers picks the profile; the answer follows the offer.
import type { LegSrtp } from '../cluster/messages.ts';
import { newSrtpKey, type SrtpSuite } from '../media/srtp.ts';
import type { AudioInfo, Crypto } from '../sip/sdp.ts';

export { newSrtpKey };

/** Our endpoint's key, when the boundary it faces is encrypted. */
export interface Keyed {
  key?: string | undefined;
}

/** One SDP boundary of a half. */
export class SdesSide {
  /** SRTP on this boundary */
  on = false;
  suite: SrtpSuite = 'AES_CM_128_HMAC_SHA1_80';
  /** the crypto tag in use (ours when we offer first, theirs once they offered) */
  tag = 1;
  /** the key the party across this boundary sends with (from its latest SDP) */
  rx: string | undefined;

  /** An SDP from the party across this boundary: its profile decides, its first usable crypto line is taken. */
  heard(a: AudioInfo): void {
    const c = a.srtp?.crypto[0];
    this.on = a.srtp !== undefined;
    if (!c) return;
    this.suite = c.suite;
    this.tag = c.tag;
    this.rx = c.key;
  }

  /** A key for a new endpoint on this boundary (undefined: in clear). */
  newKey(): string | undefined {
    return this.on ? newSrtpKey() : undefined;
  }

  /** The crypto line our endpoint puts in its SDP across this boundary. */
  crypto(at: Keyed): Crypto | undefined {
    return this.on && at.key ? { tag: this.tag, suite: this.suite, key: at.key } : undefined;
  }

  /** The SRTP of a device leg that is our endpoint `at` on this boundary (for a media request). */
  leg(at: Keyed): { srtp: LegSrtp } | Record<string, never> {
    return at.key ? { srtp: { suite: this.suite, tx: at.key, ...(this.rx ? { rx: this.rx } : {}) } } : {};
  }

  /** What a device leg was last told of this boundary's keys (to push only changes). */
  mark(): string {
    return this.on ? `${this.suite}/${this.rx ?? ''}` : '';
  }
}

/** Both boundaries of a half. */
export class Sdes {
  readonly phone = new SdesSide();
  readonly far = new SdesSide();

  /** Devices on this half carry SRTP on some leg: they must be able to. */
  get needed(): boolean {
    return this.phone.on || this.far.on;
  }
}

/** An internal link between two of our device legs (chained devices, an entry tone into a room): we make both keys. */
export function linkKeys(on: boolean): { a: { srtp: LegSrtp }; b: { srtp: LegSrtp } } | undefined {
  if (!on) return undefined;
  const [k1, k2] = [newSrtpKey(), newSrtpKey()];
  const suite: SrtpSuite = 'AES_CM_128_HMAC_SHA1_80';
  return { a: { srtp: { suite, tx: k1, rx: k2 } }, b: { srtp: { suite, tx: k2, rx: k1 } } };
}
