// Two legs joined back to back: the media path of an MTP (same codec on
// both legs: payloads pass through) and of a transcoder (PCMU <-> PCMA by
// direct byte maps). Each leg rewrites SSRC and sequence as its own stream;
// timestamps advance by what the sender advanced, so RFC 4733 events (which
// share one timestamp per event) stay intact.
import { ALAW_TO_ULAW, ULAW_TO_ALAW } from './g711.ts';
import type { RtpView } from './rtp.ts';
import { PAYLOAD_TYPE, TELEPHONE_EVENT, type RtpLeg } from './rtpLeg.ts';

interface Direction {
  to: RtpLeg;
  lastTs: number | undefined;
  map: Uint8Array | undefined;
  scratch: Buffer;
}

export class Relay {
  /** packets dropped because the codec pair is not supported */
  dropped = 0;
  private readonly dirs = new Map<RtpLeg, Direction>();

  constructor(
    readonly a: RtpLeg,
    readonly b: RtpLeg,
  ) {
    this.dirs.set(a, this.direction(a, b));
    this.dirs.set(b, this.direction(b, a));
    a.onPacket = (leg, pkt, rtp) => this.forward(leg, pkt, rtp);
    b.onPacket = (leg, pkt, rtp) => this.forward(leg, pkt, rtp);
  }

  private direction(from: RtpLeg, to: RtpLeg): Direction {
    let map: Uint8Array | undefined;
    if (from.codec === 'PCMU' && to.codec === 'PCMA') map = ULAW_TO_ALAW;
    else if (from.codec === 'PCMA' && to.codec === 'PCMU') map = ALAW_TO_ULAW;
    return { to, lastTs: undefined, map, scratch: Buffer.alloc(1500) };
  }

  private forward(from: RtpLeg, pkt: Buffer, rtp: RtpView): void {
    const d = this.dirs.get(from)!;
    const step = d.lastTs === undefined ? rtp.payloadLength : (rtp.timestamp - d.lastTs) >>> 0;
    d.lastTs = rtp.timestamp;
    const { payloadOffset: off, payloadLength: len } = rtp;
    if (rtp.payloadType === TELEPHONE_EVENT) return d.to.send(TELEPHONE_EVENT, pkt, off, len, step, rtp.marker);
    const inPt = from.codec ? PAYLOAD_TYPE[from.codec] : undefined;
    if (inPt !== undefined && rtp.payloadType !== inPt) {
      this.dropped++; // not the negotiated codec
      return;
    }
    if (!d.map) {
      if (from.codec !== d.to.codec && from.codec && d.to.codec) {
        this.dropped++; // a pair we cannot transcode (yet)
        return;
      }
      return d.to.send(d.to.codec ? PAYLOAD_TYPE[d.to.codec]! : rtp.payloadType, pkt, off, len, step, rtp.marker);
    }
    const map = d.map;
    const out = d.scratch;
    for (let i = 0; i < len; i++) out[i] = map[pkt[off + i]!]!;
    d.to.send(PAYLOAD_TYPE[d.to.codec!]!, out, 0, len, step, rtp.marker);
  }

  close(): void {
    this.a.close();
    this.b.close();
  }
}
