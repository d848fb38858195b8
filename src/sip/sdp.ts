// SDP offer/answer (RFC 3264) for one audio stream, on top of sdp-transform:
// what a phone offers (address, codecs, DTMF, direction) and the rewrites a
// back-to-back user agent makes (keep some codecs, move the media address,
// change the direction).
import sdpTransform, { type SessionDescription } from 'sdp-transform';
import { CODECS, type Codec } from '../config/schema.ts';
import { RTP_FORMAT, TELEPHONE_EVENT, staticCodec } from '../media/rtpFormats.ts';
import { SRTP_SUITES, type SrtpSuite } from '../media/srtp.ts';
import { TandemError } from '../errors.ts';

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface AudioInfo {
  address: string;
  port: number;
  /** our codec names in the phone's order of preference */
  codecs: Codec[];
  telephoneEvent: boolean;
  /** the payload type the phone gave telephone-event (phones keep sending with their own number, whatever the answer says) */
  telephoneEventPt: number | undefined;
  direction: Direction;
  /** SDES-SRTP (RTP/SAVP): the crypto lines with a suite and key Tandem can use, in the sender's order; undefined: plain RTP/AVP */
  srtp: { crypto: Crypto[] } | undefined;
}

/** One SDES crypto attribute (RFC 4568): tag, suite, the master key and salt (inline, base64). */
export interface Crypto {
  tag: number;
  suite: SrtpSuite;
  key: string;
}

/**
 * The crypto lines we can use: a supported suite and one inline key of 30
 * bytes without an MKI (lifetimes are accepted; keys last the call here).
 */
function cryptoOf(lines: ReadonlyArray<{ id: number; suite: string; config: string }>): Crypto[] {
  const out: Crypto[] = [];
  for (const l of lines) {
    const suite = l.suite.toUpperCase() as SrtpSuite;
    if (!SRTP_SUITES.includes(suite) || !Number.isInteger(l.id) || l.id < 0 || l.id > 999_999_999) continue;
    const params = l.config.trim().split(/\s+/)[0]!.split(';');
    if (params.length !== 1 || !params[0]!.startsWith('inline:')) continue;
    const [key, ...rest] = params[0]!.slice('inline:'.length).split('|');
    if (!/^[A-Za-z0-9+/]{40}$/.test(key!) || rest.some((p) => p.includes(':'))) continue; // an MKI (n:len): not supported
    out.push({ tag: l.id, suite, key: key! });
  }
  return out;
}

function codecOf(name: string, payload: number): Codec | undefined {
  const up = name.toUpperCase();
  if ((CODECS as readonly string[]).includes(up)) return up as Codec;
  return staticCodec(payload);
}

export class SdpError extends TandemError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export function parseSdp(body: Buffer | string): SessionDescription {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (!/^v=0\r?\n/.test(text)) throw new SdpError('SDP must start with v=0');
  const sdp = sdpTransform.parse(text);
  if (!sdp.media?.length) throw new SdpError('SDP has no m= line');
  return sdp;
}

export function audioOf(sdp: SessionDescription): AudioInfo {
  const m = sdp.media.find((x) => x.type === 'audio');
  if (!m) throw new SdpError('SDP has no audio stream');
  const address = m.connection?.ip ?? sdp.connection?.ip;
  if (!address) throw new SdpError('SDP has no connection address');
  const payloads = String(m.payloads ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  const codecs: Codec[] = [];
  let telephoneEvent = false;
  let telephoneEventPt: number | undefined;
  for (const pt of payloads) {
    const rtp = m.rtp.find((r) => r.payload === pt);
    if (rtp?.codec.toLowerCase() === 'telephone-event' && (rtp.rate ?? 8000) === 8000) {
      telephoneEvent = true;
      telephoneEventPt ??= pt;
    }
    const c = codecOf(rtp?.codec ?? '', pt);
    if (c && !codecs.includes(c)) codecs.push(c);
  }
  const direction = (m.direction ?? sdp.direction ?? 'sendrecv') as Direction;
  const secure = /^RTP\/SAVPF?$/i.test(m.protocol ?? '');
  const srtp = secure ? { crypto: cryptoOf(m.crypto ?? []) } : undefined;
  // c=0.0.0.0 is the RFC 2543 way to put a call on hold.
  return {
    address,
    port: m.port,
    codecs,
    telephoneEvent,
    telephoneEventPt,
    direction: address === '0.0.0.0' ? 'inactive' : direction,
    srtp,
  };
}

/** An SDP for our own media endpoint: one audio stream, these codecs, this direction. */
export function endpointSdp(opts: {
  address: string;
  port: number;
  codecs: readonly Codec[];
  direction?: Direction;
  sessionId?: number;
  version?: number;
  /** the payload type for telephone-event (the number the party facing this endpoint uses; default 101) */
  telephoneEventPt?: number | undefined;
  /** SRTP: RTP/SAVP with this crypto line (our key: what this endpoint sends with) */
  crypto?: Crypto | undefined;
}): SessionDescription {
  const eventPt = opts.telephoneEventPt ?? TELEPHONE_EVENT;
  const rtp: Array<{ payload: number; codec: string; rate: number; encoding?: number }> = opts.codecs.map((c) => {
    const f = RTP_FORMAT[c];
    return {
      payload: f.payloadType,
      codec: f.encodingName,
      rate: f.clockRate,
      ...(f.channels ? { encoding: f.channels } : {}),
    };
  });
  rtp.push({ payload: eventPt, codec: 'telephone-event', rate: 8000 });
  const id = opts.sessionId ?? Math.floor(Math.random() * 1e9);
  return {
    version: 0,
    origin: {
      username: 'tandem',
      sessionId: id,
      sessionVersion: opts.version ?? 1,
      netType: 'IN',
      ipVer: 4,
      address: opts.address,
    },
    name: 'tandem',
    connection: { version: 4, ip: opts.address },
    timing: { start: 0, stop: 0 },
    media: [
      {
        type: 'audio',
        port: opts.port,
        protocol: opts.crypto ? 'RTP/SAVP' : 'RTP/AVP',
        payloads: rtp.map((r) => r.payload).join(' '),
        rtp,
        fmtp: [{ payload: eventPt, config: '0-15' }],
        direction: opts.direction ?? 'sendrecv',
        ...(opts.crypto
          ? { crypto: [{ id: opts.crypto.tag, suite: opts.crypto.suite, config: `inline:${opts.crypto.key}` }] }
          : {}),
      },
    ],
  } as SessionDescription;
}

export function withDirection(sdp: SessionDescription, direction: Direction): SessionDescription {
  const out = structuredClone(sdp);
  for (const m of out.media) m.direction = direction;
  delete out.direction;
  return out;
}

/** The answerer's direction for an offered one (RFC 3264 §6.1). */
export function answerDirection(offered: Direction): Direction {
  return offered === 'sendonly' ? 'recvonly' : offered === 'recvonly' ? 'sendonly' : offered;
}

export function writeSdp(sdp: SessionDescription): Buffer {
  return Buffer.from(sdpTransform.write(sdp), 'utf8');
}
