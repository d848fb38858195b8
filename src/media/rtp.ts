// RTP packets (RFC 3550 §5.1) read into and written from preallocated
// buffers: the hot path never allocates. Only what a media device needs:
// version, marker, payload type, sequence, timestamp, SSRC, payload bounds.

export interface RtpView {
  marker: boolean;
  payloadType: number;
  sequence: number;
  timestamp: number;
  ssrc: number;
  payloadOffset: number;
  payloadLength: number;
}

export const newRtpView = (): RtpView => ({
  marker: false,
  payloadType: 0,
  sequence: 0,
  timestamp: 0,
  ssrc: 0,
  payloadOffset: 0,
  payloadLength: 0,
});

/** Fills `out` from a datagram; false when it is not a well-formed RTP v2 packet (RTCP included). */
export function readRtp(buf: Uint8Array, len: number, out: RtpView): boolean {
  if (len < 12) return false;
  const b0 = buf[0]!;
  if (b0 >> 6 !== 2) return false;
  const pt = buf[1]! & 0x7f;
  if (pt >= 72 && pt <= 76) return false; // RTCP on the same port (RFC 5761)
  let off = 12 + (b0 & 0x0f) * 4;
  if (b0 & 0x10) {
    if (len < off + 4) return false;
    off += 4 + ((buf[off + 2]! << 8) | buf[off + 3]!) * 4;
  }
  let end = len;
  if (b0 & 0x20) end -= buf[len - 1]!;
  if (off > end) return false;
  out.marker = (buf[1]! & 0x80) !== 0;
  out.payloadType = pt;
  out.sequence = (buf[2]! << 8) | buf[3]!;
  out.timestamp = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
  out.ssrc = ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0;
  out.payloadOffset = off;
  out.payloadLength = end - off;
  return true;
}

/** Writes a 12-byte header at the start of buf. */
export function writeRtpHeader(
  buf: Uint8Array,
  payloadType: number,
  sequence: number,
  timestamp: number,
  ssrc: number,
  marker = false,
): number {
  buf[0] = 0x80;
  buf[1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  buf[2] = (sequence >> 8) & 0xff;
  buf[3] = sequence & 0xff;
  buf[4] = (timestamp >>> 24) & 0xff;
  buf[5] = (timestamp >>> 16) & 0xff;
  buf[6] = (timestamp >>> 8) & 0xff;
  buf[7] = timestamp & 0xff;
  buf[8] = (ssrc >>> 24) & 0xff;
  buf[9] = (ssrc >>> 16) & 0xff;
  buf[10] = (ssrc >>> 8) & 0xff;
  buf[11] = ssrc & 0xff;
  return 12;
}
