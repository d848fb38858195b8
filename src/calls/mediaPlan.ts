// Which media resources a call needs, decided from what each phone offers
// and what the config says it can do (pure functions: unit-tested).
//  - transcoder: the two phones share no codec;
//  - MTP: a phone is marked mtp_required, or the DTMF methods don't meet;
//  - MOH: a phone is put on hold (decided when the hold offer arrives);
//  - conference bridge: the number dialled is a conference number.
import type { Codec } from '../config/schema.ts';
import type { ClusterModel, PhoneSpec } from '../config/model.ts';
import type { Allocation } from '../mrm/mediaResourceManager.ts';
import { MEDIA_CODECS } from '../media/codec.ts';
import type { AudioInfo } from '../sip/sdp.ts';
import { splitHostPort } from '../config/hostPort.ts';

export type DtmfMethod = 'rfc4733' | 'sip_info';

export interface CallerNeeds {
  /** the codecs a transcoder must bridge, when the phones share none */
  transcode: { callerCodec: Codec; calleeCodecs: Codec[] } | undefined;
  /** why the caller's leg needs an MTP, if it does */
  mtp: string | undefined;
}

/** The codec a phone takes a conference seat in: G.711 (cheapest to mix) when it offers it, else one the media plane has. */
export function bridgeCodec(a: AudioInfo): Codec {
  return (
    a.codecs.find((c) => c === 'PCMU' || c === 'PCMA') ?? a.codecs.find((c) => MEDIA_CODECS.includes(c)) ?? a.codecs[0]!
  );
}

export function dtmfOf(offer: AudioInfo): DtmfMethod[] {
  return offer.telephoneEvent ? ['rfc4733'] : ['sip_info'];
}

/** The codecs a callee takes: as configured, else as learnt from its SDP, else the default. */
export function calleeCodecs(callee: PhoneSpec, learnt: readonly Codec[] | undefined): readonly Codec[] {
  return callee.codecsConfigured || !learnt?.length ? callee.codecs : learnt;
}

/**
 * What the caller's node inserts, knowing the caller's offer and what the
 * callee takes (config, else learnt). A callee that refuses the offer anyway
 * gets a transcoder then (CodecFallback).
 */
export function callerNeeds(
  caller: PhoneSpec,
  offer: AudioInfo,
  callee: PhoneSpec,
  learnt?: readonly Codec[],
): CallerNeeds {
  const takes = calleeCodecs(callee, learnt);
  const common = offer.codecs.filter((c) => takes.includes(c));
  const transcode =
    common.length === 0 && offer.codecs.length > 0
      ? { callerCodec: offer.codecs[0]!, calleeCodecs: [...takes] }
      : undefined;
  let mtp: string | undefined;
  if (caller.mtpRequired) mtp = `phone ${caller.number} is marked mtp_required`;
  else if (!dtmfOf(offer).some((m) => callee.dtmf.includes(m))) {
    mtp = `DTMF mismatch: ${caller.number} sends ${dtmfOf(offer).join('/')}, ${callee.number} takes ${callee.dtmf.join('/')}`;
  }
  return { transcode, mtp };
}

/** Why a phone's own offer breaks its SRTP policy (488), if it does: the profile, or no crypto line Tandem can use. */
export function srtpOfferProblem(phone: PhoneSpec, offer: AudioInfo): string | undefined {
  if (offer.srtp && offer.srtp.crypto.length === 0)
    return `${phone.number} offered RTP/SAVP without a crypto line Tandem can use (AES_CM_128_HMAC_SHA1_80 or _32, one inline key, no MKI)`;
  if (offer.srtp && phone.srtp === 'off') return `${phone.number} offered SRTP but its srtp policy is off`;
  if (!offer.srtp && phone.srtp === 'required')
    return `${phone.number} must offer encrypted media (srtp: required) and offered RTP/AVP`;
  return undefined;
}

export interface SrtpPlan {
  /** the call cannot be made under both policies (488, with this reason) */
  refuse?: string;
  /** an MTP must terminate SRTP towards the caller and speak RTP to the callee (why) */
  convert?: string;
  /** what the caller's half offers the callee: SRTP or not */
  calleeSrtp: boolean;
}

/**
 * SRTP between two phones, from the caller's offer and both policies:
 * `required` means encrypted end to end (every leg and device) or no call;
 * an SRTP caller reaching a phone that does not do SRTP goes through an MTP
 * that converts, unless the caller requires encryption.
 */
export function srtpPlan(caller: PhoneSpec, offer: AudioInfo, callee: PhoneSpec): SrtpPlan {
  const own = srtpOfferProblem(caller, offer);
  if (own) return { refuse: own, calleeSrtp: false };
  const offered = offer.srtp !== undefined;
  if (callee.srtp === 'required' && !offered)
    return {
      refuse: `${callee.number} requires encrypted media (srtp: required) and ${caller.number} offered RTP`,
      calleeSrtp: false,
    };
  if (callee.srtp === 'off' && offered) {
    if (caller.srtp === 'required')
      return {
        refuse: `${caller.number} requires encrypted media and ${callee.number} does not do SRTP (srtp: off)`,
        calleeSrtp: false,
      };
    return {
      convert: `SRTP to RTP: ${caller.number} sends SRTP, ${callee.number} does not do SRTP (srtp: off)`,
      calleeSrtp: false,
    };
  }
  return { calleeSrtp: offered };
}

/** What the callee's node inserts on its own phone's leg. */
export function calleeNeedsMtp(callee: PhoneSpec): string | undefined {
  return callee.mtpRequired ? `phone ${callee.number} is marked mtp_required` : undefined;
}

export interface MediaEndpoint {
  address: string;
  port: number;
  /** our SRTP key for what this endpoint sends (one of our device legs on an encrypted boundary) */
  key?: string | undefined;
}

/**
 * Where SDP points when a device's node has no media plane (no `rtp`
 * section): an address in that node's range that nothing listens on, so
 * the allocation stands and the call is silent through the device.
 */
export function resourceEndpoint(model: ClusterModel, a: Allocation, side: 0 | 1): MediaEndpoint {
  const node = model.nodes.get(a.node)!;
  const rtp = node.rtp ?? { address: splitHostPort(node.sip).host, portMin: 30000, portMax: 39999 };
  let h = 0;
  for (const ch of a.id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  const slots = Math.max(1, Math.floor((rtp.portMax - rtp.portMin) / 4));
  return { address: rtp.address, port: rtp.portMin + (h % slots) * 4 + side * 2 };
}
