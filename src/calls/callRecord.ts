// The call detail record of a half that ends: who, when, how long, why, and
// through which devices (taken before they are released), with the codecs
// each side's latest SDP put first, and what each device leg received (its
// device's figures on release). Written by Teardown, kept by the node's
// CdrStore.
import type { CallDetailRecord } from '../cluster/messages.ts';
import type { Allocation } from '../mrm/allocation.ts';
import { audioOf } from '../sip/sdp.ts';
import type { HalfCall } from './halfCall.ts';

const firstCodec = (h: HalfCall, side: 'phone' | 'far'): string | null => {
  const sdp = side === 'phone' ? h.lastPhoneSdp : h.lastFarSdp;
  if (side === 'phone' && !sdp) return h.phoneAudio?.codecs[0] ?? null;
  try {
    return sdp ? (audioOf(sdp).codecs[0] ?? null) : null;
  } catch {
    return null;
  }
};

export function recordOf(h: HalfCall, node: string, reason: string, endedAt = Date.now()): CallDetailRecord {
  return {
    call: h.call,
    role: h.role,
    node,
    party: h.phone.number,
    far: h.far,
    started_at: h.since,
    answered_at: h.answeredAt ?? null,
    ended_at: endedAt,
    duration_s: h.answeredAt === undefined ? 0 : Math.round((endedAt - h.answeredAt) / 100) / 10,
    reason: reason.slice(0, 300),
    resources: h
      .allocations()
      .slice(0, 32)
      .map((a) => ({ type: a.type, resource: a.resource, node: a.node })),
    codec_party: firstCodec(h, 'phone'),
    codec_far: firstCodec(h, 'far'),
    srtp: h.sdes.phone.on || h.sdes.far.on,
  };
}

/** The quality of the half's device legs, from their devices' answers to release (kept in the record). */
export function qualityOf(released: readonly Allocation[]): NonNullable<CallDetailRecord['quality']> {
  return released
    .flatMap((a) =>
      (a.finalQuality ?? []).map((q, leg) => ({
        resource: a.resource,
        leg,
        received: q.received,
        lost: q.lost,
        jitter_ms: q.jitter_ms,
        far_fraction_lost: q.far_fraction_lost,
        far_jitter_ms: q.far_jitter_ms,
      })),
    )
    .slice(0, 64);
}
