// One RTP stream between a media device and a phone (or another device):
// its own socket, SSRC, sequence and timestamp; symmetric RTP (RFC 4961).
// Latching (who may speak to the leg): with the default policy `sdp` it
// only ever latches to the address and port the SDP gave, so a stranger
// speaking first gets nothing and changes nothing; with `first_source` (phones
// behind NAT, whose packets come from an address the SDP cannot know) it
// latches to the first source heard. Either way, once latched, every other
// source is counted and dropped. It sends to the latched source (or, before
// any packet, to the address the SDP gave). Sending rotates through a few
// preallocated output buffers (a send may still be in flight when the next
// packet is written). With SRTP (setSrtp) every packet in is authenticated
// and decrypted before anything else looks at it (a packet that fails is
// counted and dropped, and never latches the leg), every packet out is
// encrypted; RTCP likewise (SRTCP).
import type { RemoteInfo } from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { Codec } from '../config/schema.ts';
import type { BoundPort } from './portPool.ts';
import { newRtpView, readRtp, writeRtpHeader, type RtpView } from './rtp.ts';
import { ReceiverStats, buildReport, readReportBlocks } from './rtcp.ts';
import { RTP_FORMAT, TELEPHONE_EVENT } from './rtpFormats.ts';
import { SrtpContext, SrtpError, parseInlineKey, type SrtpSuite } from './srtp.ts';

export interface Remote {
  address: string;
  port: number;
}

export type PacketHandler = (leg: RtpLeg, packet: Buffer, rtp: RtpView) => void;

export type LatchPolicy = 'sdp' | 'first_source';

/** Counters shared by the legs of a node (for /metrics). */
export interface LegCounters {
  strangers: number;
  /** SRTP/SRTCP packets that failed authentication (tampered, forged, wrong key) */
  srtpAuthFailures: number;
  /** SRTP/SRTCP packets received twice (replays) */
  srtpReplays: number;
}

export const newLegCounters = (): LegCounters => ({ strangers: 0, srtpAuthFailures: 0, srtpReplays: 0 });

/** SRTP keys of a leg: ours for what it sends, the far party's for what it receives (unknown until its SDP came). */
export interface LegKeys {
  suite: SrtpSuite;
  tx: string;
  rx?: string | undefined;
}

const sameRemote = (a: Remote | undefined, b: Remote | undefined) =>
  a !== undefined && b !== undefined && a.address === b.address && a.port === b.port;

export class RtpLeg {
  remote: Remote | undefined;
  private latched = false;
  /** the socket is connected to the latched source: sends skip the address lookup, the kernel filters strangers */
  private connected = false;
  private closed = false;
  private readonly ssrc = randomInt(1, 0xffffffff);
  private seq = randomInt(0, 0xffff);
  private ts = randomInt(0, 0xffffffff);
  private readonly outs = Array.from({ length: 8 }, () => Buffer.alloc(1500));
  private outIndex = 0;
  private readonly view = newRtpView();
  /** where the SDP says the far end is */
  private expected: Remote | undefined;
  /** counters for the admin API and tests; strangers: packets from anyone but the far end */
  readonly stats = { received: 0, sent: 0, ignored: 0, strangers: 0, srtpAuthFailures: 0, srtpReplays: 0 };
  /** SRTP: the contexts of each direction; the keys as given, to tell a change */
  private srtp:
    | { suite: SrtpSuite; tx: SrtpContext; rx: SrtpContext | undefined; txKey: string; rxKey: string | undefined }
    | undefined;
  private octets = 0;
  private readonly incoming: ReceiverStats;
  /** what the far end's RTCP says about our stream */
  farReport: { fractionLost: number; cumulativeLost: number; jitterMs: number; at: number } | undefined;
  private rtcpRemote: Remote | undefined;
  onPacket: PacketHandler | undefined;
  /** the payload type of RFC 4733 telephone-events on this leg, both ways (the party's own number) */
  eventPt = TELEPHONE_EVENT;

  constructor(
    private readonly bound: BoundPort,
    readonly address: string,
    /** the codec on this leg; undefined: a relay that passes payloads through */
    public codec: Codec | undefined,
    private readonly latch: LatchPolicy = 'sdp',
    private readonly counters: LegCounters = newLegCounters(),
  ) {
    bound.socket.on('message', (msg, rinfo) => this.receive(msg, rinfo));
    bound.socket.on('error', () => undefined);
    bound.rtcp.on('message', (msg, rinfo) => this.receiveRtcp(msg, rinfo));
    bound.rtcp.on('error', () => undefined);
    this.incoming = new ReceiverStats(RTP_FORMAT[codec ?? 'PCMU'].clockRate);
  }

  get port(): number {
    return this.bound.port;
  }

  /**
   * Where the SDP says the far end is: where to send before anything was
   * heard, and (policy sdp) the only source the leg latches to. A new
   * address (re-INVITE, a re-homed neighbour) unlatches the old one.
   */
  setRemote(r: Remote): void {
    const changed = !sameRemote(r, this.expected);
    this.expected = { address: r.address, port: r.port };
    if (!this.latched) {
      this.remote = this.expected;
      return;
    }
    if (this.latch === 'sdp' && changed && !sameRemote(r, this.remote)) {
      this.latched = false;
      if (this.connected) {
        this.connected = false;
        try {
          this.bound.socket.disconnect();
        } catch {
          // not connected yet (the connect callback is still pending)
        }
      }
      this.remote = this.expected;
    }
  }

  /**
   * SRTP on this leg (SDES keys; inline key and salt, base64). New keys (a
   * re-offer) start new contexts; until the far party's key is known,
   * what it sends is dropped.
   */
  setSrtp(k: LegKeys): void {
    const cur = this.srtp;
    if (cur && cur.suite === k.suite && cur.txKey === k.tx && cur.rxKey === k.rx) return;
    const context = (inline: string) => {
      const { key, salt } = parseInlineKey(inline);
      return new SrtpContext(k.suite, key, salt);
    };
    const tx = cur && cur.suite === k.suite && cur.txKey === k.tx ? cur.tx : context(k.tx);
    const rx =
      k.rx === undefined ? undefined : cur && cur.suite === k.suite && cur.rxKey === k.rx ? cur.rx : context(k.rx);
    this.srtp = { suite: k.suite, tx, rx, txKey: k.tx, rxKey: k.rx };
  }

  /** The SRTP suite of the leg (undefined: plain RTP). */
  get srtpSuite(): SrtpSuite | undefined {
    return this.srtp?.suite;
  }

  /** The key this leg sends with (a link between bridges hands it to its peer; never logged or shown). */
  get srtpTxKey(): string | undefined {
    return this.srtp?.txKey;
  }

  /** The key the far end sends with, as last given. */
  get srtpRxKey(): string | undefined {
    return this.srtp?.rxKey;
  }

  /** Authenticates and decrypts an SRTP or SRTCP packet; undefined (counted) when it does not pass. */
  private unprotect(msg: Buffer, rtcp: boolean): Buffer | undefined {
    const rx = this.srtp!.rx;
    if (!rx) {
      this.stats.ignored++; // the far party's key is not known yet
      return undefined;
    }
    try {
      return rtcp ? rx.unprotectRtcp(msg) : rx.unprotect(msg);
    } catch (err) {
      const why = err instanceof SrtpError ? err.reason : 'short';
      if (why === 'auth') {
        this.stats.srtpAuthFailures++;
        this.counters.srtpAuthFailures++;
      } else if (why === 'replay') {
        this.stats.srtpReplays++;
        this.counters.srtpReplays++;
      } else this.stats.ignored++;
      return undefined;
    }
  }

  private stranger(): void {
    this.stats.strangers++;
    this.counters.strangers++;
  }

  private receive(msg: Buffer, rinfo: RemoteInfo): void {
    // SRTP: the header is in clear but its padding is not, so only the fixed part is checked before authenticating.
    const plain = this.srtp === undefined;
    if (
      plain
        ? !readRtp(msg, msg.length, this.view)
        : msg.length < 12 || msg[0]! >> 6 !== 2 || ((msg[1]! & 0x7f) >= 72 && (msg[1]! & 0x7f) <= 76)
    ) {
      this.stats.ignored++; // RTCP and non-RTP: not used by the devices yet
      return;
    }
    if (this.latched) {
      if (rinfo.port !== this.remote!.port || rinfo.address !== this.remote!.address) return this.stranger();
    } else if (
      this.latch === 'sdp' &&
      (!this.expected || rinfo.address !== this.expected.address || rinfo.port !== this.expected.port)
    )
      return this.stranger();
    if (!plain) {
      const clear = this.unprotect(msg, false);
      if (!clear || !readRtp(clear, clear.length, this.view)) return;
      msg = clear;
    }
    if (!this.latched) {
      this.remote = { address: rinfo.address, port: rinfo.port };
      this.latched = true;
      this.bound.socket.connect(rinfo.port, rinfo.address, () => (this.connected = true));
    }
    this.stats.received++;
    this.incoming.packet(this.view.sequence, this.view.timestamp, this.view.ssrc, Date.now());
    this.onPacket?.(this, msg, this.view);
  }

  private receiveRtcp(msg: Buffer, rinfo: RemoteInfo): void {
    // Only from the party we latched to (or its RTCP port), like RTP.
    if (this.remote && rinfo.address !== this.remote.address) return this.stranger();
    if (this.srtp) {
      const clear = this.unprotect(msg, true);
      if (!clear) return;
      msg = clear;
    }
    this.rtcpRemote = { address: rinfo.address, port: rinfo.port };
    const rate = RTP_FORMAT[this.codec ?? 'PCMU'].clockRate;
    for (const b of readReportBlocks(msg)) {
      if (b.ssrc !== this.ssrc) continue;
      this.farReport = {
        fractionLost: b.fractionLost,
        cumulativeLost: b.cumulativeLost,
        jitterMs: (b.jitter * 1000) / rate,
        at: Date.now(),
      };
    }
  }

  /** Sends this leg's RTCP report (every few seconds, from the media host): SR if we send, RR otherwise. */
  report(cname: string): void {
    const to = this.rtcpRemote ?? (this.remote && { address: this.remote.address, port: this.remote.port + 1 });
    if (!to || this.closed) return;
    const sender =
      this.stats.sent > 0 ? { rtpTimestamp: this.ts, packets: this.stats.sent, octets: this.octets } : undefined;
    const built = buildReport(this.ssrc, cname, sender, this.incoming);
    const pkt = this.srtp ? this.srtp.tx.protectRtcp(built) : built;
    try {
      this.bound.rtcp.send(pkt, to.port, to.address);
    } catch {
      // as for RTP: a lost report, not a crash
    }
  }

  /** Reception and the far end's view of our stream, for the admin API. */
  quality(): {
    received: number;
    sent: number;
    lost: number;
    jitter_ms: number;
    far_fraction_lost: number | null;
    far_jitter_ms: number | null;
    srtp: string | null;
    srtp_auth_failures: number;
    srtp_replays: number;
  } {
    return {
      srtp: this.srtp?.suite ?? null,
      srtp_auth_failures: this.stats.srtpAuthFailures,
      srtp_replays: this.stats.srtpReplays,
      received: this.stats.received,
      sent: this.stats.sent,
      lost: this.incoming.lost,
      jitter_ms: +this.incoming.jitterMs.toFixed(2),
      far_fraction_lost: this.farReport ? +this.farReport.fractionLost.toFixed(3) : null,
      far_jitter_ms: this.farReport ? +this.farReport.jitterMs.toFixed(2) : null,
    };
  }

  /** Sends one packet: our header, then payload[start, start+len); the timestamp advances by `samples`. */
  send(payloadType: number, payload: Buffer, start: number, len: number, samples: number, marker = false): void {
    if (!this.remote || this.closed) return;
    const out = this.outs[this.outIndex]!;
    this.outIndex = (this.outIndex + 1) & 7;
    writeRtpHeader(out, payloadType, this.seq, this.ts, this.ssrc, marker);
    payload.copy(out, 12, start, start + len);
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + samples) >>> 0;
    this.stats.sent++;
    this.octets += len;
    try {
      if (this.srtp) {
        const p = this.srtp.tx.protect(out.subarray(0, 12 + len));
        if (this.connected) this.bound.socket.send(p);
        else this.bound.socket.send(p, this.remote.port, this.remote.address);
      } else if (this.connected) this.bound.socket.send(out, 0, 12 + len);
      else this.bound.socket.send(out, 0, 12 + len, this.remote.port, this.remote.address);
    } catch {
      // A socket gone under us (shutdown): the packet is lost, the node goes on.
      this.stats.ignored++;
    }
  }

  /** Forwards an event packet (RFC 4733) keeping its timestamp step and marker. */
  sendEvent(payload: Buffer, start: number, len: number, marker: boolean): void {
    this.send(this.eventPt, payload, start, len, 0, marker);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onPacket = undefined;
    this.bound.release();
  }
}
