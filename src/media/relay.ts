// Two legs joined back to back: the media path of an MTP (same codec on
// both legs: payloads pass through) and of a transcoder (PCMU <-> PCMA by
// direct byte maps; other pairs decode to PCM, at 16 kHz when a leg is
// wideband, else 8 kHz, and re-encode in 20 ms
// frames, see codec.ts). Each leg rewrites SSRC and sequence as its own stream;
// timestamps advance by what the sender advanced, so RFC 4733 events (which
// share one timestamp per event) stay intact. A leg whose far party takes DTMF
// as SIP INFO gets no telephone-events: the relay reports each digit instead
// (the call manager sends the INFO), and can play digits into a leg.
import type { MediaRequest } from '../cluster/messages.ts';
import type { ResourceSpec } from '../config/model.ts';
import { ALAW_TO_ULAW, ULAW_TO_ALAW } from './g711.ts';
import { MediaError, type MediaEvent, type MediaSession } from './mediaPlane.ts';
import type { SessionHost } from './sessionKind.ts';
import type { RtpView } from './rtp.ts';
import type { RtpLeg } from './rtpLeg.ts';
import { RTP_FORMAT } from './rtpFormats.ts';
import { DtmfDetector, sendDigit } from './dtmf.ts';
import { FRAME_8K, createCodec, isWideband, type AudioCodec } from './codec.ts';

export type DtmfMode = 'rfc4733' | 'sip_info';
/** A digit that arrived on leg `fromLeg` (0 or 1) as telephone-events, for a party that takes SIP INFO. */
export type DtmfHandler = (fromLeg: 0 | 1, digit: string, durationMs: number) => void;

interface Direction {
  index: 0 | 1;
  to: RtpLeg;
  /** the party behind `to` takes DTMF as SIP INFO: detect, don't forward */
  detector: DtmfDetector | undefined;
  lastTs: number | undefined;
  map: Uint8Array | undefined;
  scratch: Buffer;
  /** other pairs: decode, queue PCM (8 kHz, or 16 kHz with a wideband leg), encode 20 ms frames */
  decoder: AudioCodec | undefined;
  encoder: AudioCodec | undefined;
  pcm: Int16Array;
  fifo: Int16Array;
  fifoLen: number;
}

export class Relay {
  /** packets dropped because the codec pair is not supported */
  dropped = 0;
  private readonly dirs = new Map<RtpLeg, Direction>();

  onDtmf: DtmfHandler | undefined;

  constructor(
    readonly a: RtpLeg,
    readonly b: RtpLeg,
    private readonly dtmf: [DtmfMode, DtmfMode] = ['rfc4733', 'rfc4733'],
  ) {
    this.build();
    a.onPacket = (leg, pkt, rtp) => this.forward(leg, pkt, rtp);
    b.onPacket = (leg, pkt, rtp) => this.forward(leg, pkt, rtp);
  }

  /** The legs' codecs changed (a far end answered with one of several offered): rebuild both directions. */
  recodec(): void {
    for (const d of this.dirs.values()) {
      d.decoder?.close();
      d.encoder?.close();
    }
    this.build();
  }

  private build(): void {
    this.dirs.set(this.a, this.direction(0, this.a, this.b, this.dtmf[1]));
    this.dirs.set(this.b, this.direction(1, this.b, this.a, this.dtmf[0]));
  }

  /** Plays a digit into leg 0 or 1 as telephone-events (it came from the other side as SIP INFO). */
  playDigit(leg: 0 | 1, digit: string, durationMs: number): void {
    sendDigit(leg === 0 ? this.a : this.b, digit, durationMs);
  }

  private direction(index: 0 | 1, from: RtpLeg, to: RtpLeg, toMode: DtmfMode): Direction {
    let map: Uint8Array | undefined;
    if (from.codec === 'PCMU' && to.codec === 'PCMA') map = ULAW_TO_ALAW;
    else if (from.codec === 'PCMA' && to.codec === 'PCMU') map = ALAW_TO_ULAW;
    const pcmPath = !map && from.codec && to.codec && from.codec !== to.codec;
    // A wideband leg on either side: work at 16 kHz so its upper band survives.
    const rate = isWideband(from.codec) || isWideband(to.codec) ? 16000 : 8000;
    return {
      index,
      to,
      detector: toMode === 'sip_info' ? new DtmfDetector() : undefined,
      lastTs: undefined,
      map,
      scratch: Buffer.alloc(1500),
      decoder: pcmPath ? createCodec(from.codec!, rate) : undefined,
      encoder: pcmPath ? createCodec(to.codec!, rate) : undefined,
      pcm: new Int16Array(FRAME_8K * 2 * 6),
      fifo: new Int16Array(FRAME_8K * 2 * 8),
      fifoLen: 0,
    };
  }

  private forward(from: RtpLeg, pkt: Buffer, rtp: RtpView): void {
    const d = this.dirs.get(from)!;
    const step = d.lastTs === undefined ? rtp.payloadLength : (rtp.timestamp - d.lastTs) >>> 0;
    d.lastTs = rtp.timestamp;
    const { payloadOffset: off, payloadLength: len } = rtp;
    // Events go out with the number the far party uses, through an MTP or a transcoder alike.
    if (rtp.payloadType === from.eventPt) {
      if (!d.detector) return d.to.send(d.to.eventPt, pkt, off, len, step, rtp.marker);
      const done = d.detector.packet(pkt, off, len, rtp.timestamp);
      if (done) this.onDtmf?.(d.index, done.digit, done.durationMs);
      return;
    }
    const inPt = from.codec ? RTP_FORMAT[from.codec].payloadType : undefined;
    if (inPt !== undefined && rtp.payloadType !== inPt) {
      this.dropped++; // not the negotiated codec
      return;
    }
    if (!d.map) {
      if (d.decoder && d.encoder) return this.transcode(d, pkt, off, len);
      if (from.codec !== d.to.codec && from.codec && d.to.codec) {
        this.dropped++; // a pair we cannot transcode (yet)
        return;
      }
      return d.to.send(
        d.to.codec ? RTP_FORMAT[d.to.codec].payloadType : rtp.payloadType,
        pkt,
        off,
        len,
        step,
        rtp.marker,
      );
    }
    const map = d.map;
    const out = d.scratch;
    for (let i = 0; i < len; i++) out[i] = map[pkt[off + i]!]!;
    d.to.send(RTP_FORMAT[d.to.codec!].payloadType, out, 0, len, step, rtp.marker);
  }

  private transcode(d: Direction, pkt: Buffer, off: number, len: number): void {
    const n = d.decoder!.decode(pkt, off, len, d.pcm);
    if (n === 0) {
      this.dropped++;
      return;
    }
    if (d.fifoLen + n > d.fifo.length) d.fifoLen = 0; // far behind: start over rather than grow
    // Plain loops and copyWithin: no views allocated per packet.
    const fifo = d.fifo;
    for (let i = 0; i < n; i++) fifo[d.fifoLen + i] = d.pcm[i]!;
    d.fifoLen += n;
    const frame = d.encoder!.frame;
    while (d.fifoLen >= frame) {
      const bytes = d.encoder!.encode(fifo, d.scratch); // encodes fifo[0, frame)
      d.to.send(d.encoder!.payloadType, d.scratch, 0, bytes, d.encoder!.tsPerFrame);
      fifo.copyWithin(0, frame, d.fifoLen);
      d.fifoLen -= frame;
    }
  }

  close(): void {
    for (const d of this.dirs.values()) {
      d.decoder?.close();
      d.encoder?.close();
    }
    this.a.close();
    this.b.close();
  }
}

/** The session of a relay device (MTP, transcoder): two legs, the relay between them, digits played into either. */
export async function openRelaySession(
  host: SessionHost,
  spec: ResourceSpec,
  req: MediaRequest,
  onEvent: (e: MediaEvent) => void,
): Promise<MediaSession> {
  if (req.legs.length !== 2) throw new MediaError(`a ${spec.type} session has two legs`);
  const [a, b] = await Promise.all(req.legs.map((l) => host.leg(l.codec)));
  const relay = new Relay(a!, b!, [req.legs[0]!.dtmf ?? 'rfc4733', req.legs[1]!.dtmf ?? 'rfc4733']);
  relay.onDtmf = (fromLeg, digit, durationMs) => onEvent({ type: 'dtmf', fromLeg, digit, durationMs });
  const session = host.sessionOf(
    spec,
    [a!, b!],
    req,
    () => relay.close(),
    () => relay.recodec(),
  );
  session.playDigit = (leg, digit, ms) => relay.playDigit(leg, digit, ms);
  return session;
}
