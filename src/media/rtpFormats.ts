// The RTP formats of the codecs Tandem speaks: payload type (static per RFC
// 3551, dynamic ones as our SDP offers them), RTP clock rate (8000 for G.722
// by RFC 3551's quirk, 48000 for Opus by RFC 7587) and rtpmap name. One table
// for the SDP writer, the RTP legs and the codecs.
import type { Codec } from '../config/schema.ts';

export interface RtpFormat {
  payloadType: number;
  clockRate: number;
  encodingName: string;
  channels?: number;
}

export const RTP_FORMAT: Readonly<Record<Codec, RtpFormat>> = {
  PCMU: { payloadType: 0, clockRate: 8000, encodingName: 'PCMU' },
  PCMA: { payloadType: 8, clockRate: 8000, encodingName: 'PCMA' },
  G722: { payloadType: 9, clockRate: 8000, encodingName: 'G722' },
  L16: { payloadType: 96, clockRate: 16000, encodingName: 'L16' },
  OPUS: { payloadType: 111, clockRate: 48000, encodingName: 'opus', channels: 2 },
};

/** RFC 4733 telephone-events, as our SDP offers them. */
export const TELEPHONE_EVENT = 101;

/** The codec a static payload type stands for when an SDP has no rtpmap for it. */
export function staticCodec(payloadType: number): Codec | undefined {
  return payloadType === 0 ? 'PCMU' : payloadType === 8 ? 'PCMA' : payloadType === 9 ? 'G722' : undefined;
}
