// SIP over UDP and TCP on one address, and over TLS on another when
// configured (RFC 3261 §18, §26.2). Parses what arrives,
// answers requests it cannot parse with 400/505/513 when it can tell where to
// send the answer, drops the rest with a log line, and hands good messages up.
import { createSocket, type Socket as UdpSocket, type RemoteInfo } from 'node:dgram';

/** bytes of SIP datagrams the kernel may hold for this node while it is busy */
const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024;
import { EventEmitter } from 'node:events';
import { createConnection, createServer, isIP, type Server, type Socket } from 'node:net';
import {
  checkServerIdentity,
  connect as connectTls,
  createServer as createTlsServer,
  type Server as TlsServer,
} from 'node:tls';
import type { Logger } from 'pino';
import { REASONS, SipHeaders, serialize, type SipMessage, type SipRequest, type SipResponse } from './message.ts';
import { MAX_MESSAGE_BYTES, headerEnd, parseSip } from './parser.ts';
import { LogLimiter } from '../log.ts';
import { UdpIntake } from './intake.ts';
import type { SipLadder } from './ladder.ts';
import type { SipPeer } from './peer.ts';
import { errorMessage } from '../errors.ts';

/** Limits on SIP over TCP: idle and slow connections are closed, and no source may hold many. */
export interface TcpLimits {
  maxConnectionsPerSource: number;
  maxConnections: number;
  idleTimeoutMs: number;
  messageTimeoutMs: number;
}

/** TLS 1.2: ECDHE key exchange and AEAD ciphers only (no static RSA, no CBC); TLS 1.3's suites are all AEAD. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const DEFAULT_TCP_LIMITS: TcpLimits = {
  maxConnectionsPerSource: 32,
  maxConnections: 4096,
  idleTimeoutMs: 300_000,
  messageTimeoutMs: 10_000,
};

/** SIP over TLS: where it listens and its certificate and key (PEM). */
export interface SipTlsOptions {
  host: string;
  port: number;
  cert: Buffer;
  key: Buffer;
}

export type { SipPeer } from './peer.ts';

export interface SipTransportEvents {
  /** waitedMs: how long the datagram waited in the node's intake queue (0 over TCP and TLS) */
  message: [msg: SipMessage, from: SipPeer, waitedMs: number];
}

/** ids of the CA bundles trunks trust (a connection we opened is reused only for the same name and CAs) */
const caIds = new WeakMap<Buffer, number>();
let nextCaId = 1;
const caId = (ca: Buffer | undefined) => {
  if (!ca) return 0;
  let id = caIds.get(ca);
  if (id === undefined) caIds.set(ca, (id = nextCaId++));
  return id;
};
const peerKey = (p: SipPeer) =>
  p.tls
    ? `${p.transport}:${p.address}:${p.port}:${p.tls.servername}:${caId(p.tls.ca)}`
    : `${p.transport}:${p.address}:${p.port}`;

export class SipTransport extends EventEmitter<SipTransportEvents> {
  private readonly udp: UdpSocket = createSocket('udp4');
  private readonly tcp: Server;
  private readonly tls: TlsServer | undefined;
  private readonly conns = new Map<string, Socket>();
  /** accepted connections per source address */
  private readonly perSource = new Map<string, number>();
  private accepted = 0;
  private closed = false;
  private readonly limited: LogLimiter;
  /** counters for the admin API and tests */
  readonly stats = {
    received: 0,
    malformed: 0,
    sent: 0,
    tcpRefused: 0,
    tcpTimedOut: 0,
    keepAlives: 0,
    tlsHandshakeTimedOut: 0,
  };
  /**
   * Whether a UDP source is known (a registered phone's binding): its datagrams
   * are handled before strangers', which wait in a bounded queue (UdpIntake).
   * Unset: every source counts as known.
   */
  knownPeer: ((address: string, port: number) => boolean) | undefined;
  /** the ladder of recent calls, when the node keeps one */
  ladder: SipLadder | undefined;
  readonly intake = new UdpIntake<{ buf: Buffer; from: SipPeer }>(
    (d, waitedMs) => !this.closed && this.receive(d.buf, d.from, false, waitedMs),
  );
  /** TLS connections still in their handshake, by peer, with their deadline */
  private readonly pendingTls = new Map<string, { raw: Socket; deadline: NodeJS.Timeout }>();

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly log: Logger,
    private readonly limits: TcpLimits = DEFAULT_TCP_LIMITS,
    private readonly tlsOptions?: SipTlsOptions,
  ) {
    super();
    this.limited = new LogLimiter(log);
    this.udp.on('message', (buf, rinfo: RemoteInfo) => {
      this.intake.noteRead();
      // A datagram of line ends only is a NAT keep-alive (linphone sends CRLF every 30 s): nothing to answer.
      if (buf.length <= 8 && buf.every((b) => b === 0x0d || b === 0x0a)) {
        this.stats.keepAlives++;
        return;
      }
      const from: SipPeer = { transport: 'UDP', address: rinfo.address, port: rinfo.port };
      if (!this.knownPeer || this.knownPeer(from.address, from.port)) this.intake.fromKnown({ buf, from });
      else this.intake.stranger({ buf, from });
    });
    this.udp.on('error', (err) => this.log.error({ err }, 'SIP UDP socket error'));
    this.tcp = createServer((s) => this.accept(s, 'TCP'));
    this.tcp.on('error', (err) => this.log.error({ err }, 'SIP TCP listener error'));
    if (tlsOptions) {
      // TLS 1.2 (forward-secret AEAD suites only) or 1.3. A connection is counted against the caps from its
      // first byte, not from the end of its handshake, and must finish the handshake within messageTimeoutMs.
      this.tls = createTlsServer(
        {
          cert: tlsOptions.cert,
          key: tlsOptions.key,
          minVersion: 'TLSv1.2',
          ciphers: TLS12_CIPHERS,
          honorCipherOrder: true,
          handshakeTimeout: limits.messageTimeoutMs,
        },
        (s) => this.secured(s),
      );
      this.tls.on('connection', (raw: Socket) => this.handshaking(raw));
      this.tls.on('tlsClientError', (err) =>
        this.limited.warn('tls-handshake', { err: err.message }, 'SIP TLS handshake failed'),
      );
      this.tls.on('error', (err) => this.log.error({ err }, 'SIP TLS listener error'));
    }
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.udp.once('error', reject);
      this.udp.bind(this.port, this.host, () => {
        this.udp.off('error', reject);
        // A flood fills the kernel's default buffer (~200 KB) in a few ms of a busy loop, and then the
        // phones' own requests are dropped before they are read: ask for 4 MiB (capped by net.core.rmem_max).
        try {
          this.udp.setRecvBufferSize(UDP_RECEIVE_BUFFER);
        } catch (err) {
          this.log.warn({ err: errorMessage(err) }, 'SIP UDP receive buffer left at the system default');
        }
        resolve();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(this.localPort, this.host, () => {
        this.tcp.off('error', reject);
        resolve();
      });
    });
    const tls = this.tls;
    if (tls && this.tlsOptions) {
      const { host, port } = this.tlsOptions;
      await new Promise<void>((resolve, reject) => {
        tls.once('error', reject);
        tls.listen(port, host, () => {
          tls.off('error', reject);
          resolve();
        });
      });
    }
  }

  /** TCP and TLS connections held now (TLS ones from their first byte). */
  get connections(): number {
    return this.accepted;
  }

  /** The bound TLS port (undefined: no SIP over TLS on this node). */
  get localTlsPort(): number | undefined {
    const a = this.tls?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  /** A registered phone's address or a trunk's peer (everyone, when the node has not said who it knows). */
  private isKnown(peer: SipPeer): boolean {
    return !this.knownPeer || this.knownPeer(peer.address, peer.port);
  }

  /** The bound port (the configured one, or the one picked for port 0). */
  get localPort(): number {
    return this.udp.address().port;
  }

  send(msg: SipMessage, to: SipPeer): void {
    // Timers of transactions may outlive the transport by a moment at shutdown.
    if (this.closed) return;
    const buf = serialize(msg);
    this.stats.sent++;
    this.ladder?.record('out', msg, to, buf, this.isKnown(to));
    if (to.transport === 'UDP') {
      this.udp.send(
        buf,
        to.port,
        to.address,
        (err) => err && this.log.warn({ err: err.message, to }, 'SIP UDP send failed'),
      );
      return;
    }
    let s = this.conns.get(peerKey(to));
    if ((!s || s.destroyed) && to.transport === 'TLS' && to.tls) {
      s = this.connectTls(to, to.tls);
    } else if (!s || s.destroyed) {
      // A TLS phone keeps its connection to us (we hold no client certificate to open one to it).
      if (to.transport === 'TLS') {
        this.limited.warn(
          `tls-gone|${to.address}`,
          { to },
          'SIP over TLS: no connection to the phone any more; message dropped',
        );
        return;
      }
      s = createConnection({ host: to.address, port: to.port });
      this.adopt(s, to);
    }
    s.write(buf);
  }

  /**
   * A TLS connection we open (to a trunk's server): its certificate must
   * chain to `tls.ca` (or the system's CAs) and carry the server's name;
   * one that does not is closed before anything is sent (what was written
   * waits for the handshake).
   */
  private connectTls(to: SipPeer, tls: NonNullable<SipPeer['tls']>): Socket {
    const s = connectTls({
      host: to.address,
      port: to.port,
      ...(isIP(tls.servername) ? {} : { servername: tls.servername }),
      ...(tls.ca ? { ca: tls.ca } : {}),
      minVersion: 'TLSv1.2',
      ciphers: TLS12_CIPHERS,
      rejectUnauthorized: true,
      // (an address given as the name is checked against the certificate's IP addresses)
      checkServerIdentity: (_host, cert) => checkServerIdentity(tls.servername, cert),
    });
    s.once('error', (err) =>
      this.limited.warn(
        `tls-out|${to.address}`,
        { to: `${to.address}:${to.port}`, name: tls.servername, err: err.message },
        'SIP over TLS: connection to the server failed',
      ),
    );
    this.adopt(s, to);
    return s;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.conns.values()) s.destroy();
    this.intake.close();
    // (a listener's close waits for every connection: half-open handshakes must not hold a stopping node)
    for (const p of this.pendingTls.values()) p.raw.destroy();
    await new Promise<void>((r) => this.tcp.close(() => r()));
    if (this.tls) await new Promise<void>((r) => this.tls!.close(() => r()));
    await new Promise<void>((r) => this.udp.close(() => r()));
  }

  /** An incoming TCP connection: refused past the caps, closed when idle or when a message takes too long. */
  private accept(s: Socket, transport: 'TCP' | 'TLS'): void {
    if (this.admit(s)) this.adopt(s, undefined, transport);
  }

  /** A TLS connection's first moment (before its handshake): counted, and given until messageTimeoutMs to finish the handshake. */
  private handshaking(raw: Socket): void {
    if (!this.admit(raw)) return;
    const key = `${raw.remoteAddress}|${raw.remotePort}`;
    const deadline = setTimeout(() => {
      this.stats.tlsHandshakeTimedOut++;
      this.limited.warn(`tls-slow|${raw.remoteAddress}`, { peer: key }, 'SIP TLS handshake not done in time: closed');
      raw.destroy();
    }, this.limits.messageTimeoutMs);
    this.pendingTls.set(key, { raw, deadline });
    raw.once('close', () => {
      clearTimeout(deadline);
      if (this.pendingTls.get(key)?.raw === raw) this.pendingTls.delete(key);
    });
  }

  /** The handshake is done: from here a TLS connection is framed and timed like a TCP one (it was counted already). */
  private secured(s: Socket): void {
    const key = `${s.remoteAddress}|${s.remotePort}`;
    const p = this.pendingTls.get(key);
    if (p) {
      clearTimeout(p.deadline);
      this.pendingTls.delete(key);
    }
    this.adopt(s, undefined, 'TLS');
  }

  /** Counts a new connection against the caps (per source and in all); false: refused and destroyed. */
  private admit(s: Socket): boolean {
    const addr = s.remoteAddress ?? '';
    const n = this.perSource.get(addr) ?? 0;
    if (this.closed || this.accepted >= this.limits.maxConnections || n >= this.limits.maxConnectionsPerSource) {
      this.stats.tcpRefused++;
      this.limited.warn(
        `cap|${addr}`,
        { peer: addr, from_source: n, total: this.accepted },
        'SIP TCP connection refused: too many connections',
      );
      s.destroy();
      return false;
    }
    this.accepted++;
    this.perSource.set(addr, n + 1);
    s.once('close', () => {
      this.accepted--;
      const left = (this.perSource.get(addr) ?? 1) - 1;
      if (left <= 0) this.perSource.delete(addr);
      else this.perSource.set(addr, left);
    });
    return true;
  }

  private adopt(s: Socket, known?: SipPeer, transport: 'TCP' | 'TLS' = 'TCP'): void {
    const peer: SipPeer = known ?? { transport, address: s.remoteAddress ?? '', port: s.remotePort ?? 0 };
    this.conns.set(peerKey(peer), s);
    let buf = Buffer.alloc(0);
    // Idle: nothing at all for idleTimeoutMs. Slow: a message begun but not whole within messageTimeoutMs.
    s.setTimeout(this.limits.idleTimeoutMs, () => this.timedOut(s, peer, 'idle'));
    let partial: NodeJS.Timeout | undefined;
    s.once('close', () => clearTimeout(partial));
    s.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      framing();
      // The clock of a message starts at its first byte; more bytes of it do not reset it.
      if (!buf.length) {
        clearTimeout(partial);
        partial = undefined;
      } else if (!partial && !s.destroyed) {
        partial = setTimeout(() => this.timedOut(s, peer, 'partial message'), this.limits.messageTimeoutMs);
      }
    });
    const framing = () => {
      for (;;) {
        // Stream framing: the header section, then Content-Length bytes. Line ends between messages are
        // keep-alives; a double CRLF is a ping that gets a CRLF pong (RFC 5626 §4.4.1).
        let ends = 0;
        while (buf.length && (buf[0] === 0x0d || buf[0] === 0x0a)) {
          if (buf[0] === 0x0a) ends++;
          buf = buf.subarray(1);
        }
        if (ends >= 2) {
          this.stats.keepAlives++;
          if (!s.destroyed) s.write('\r\n');
        }
        const he = headerEnd(buf);
        if (!he) {
          if (buf.length > MAX_MESSAGE_BYTES) this.closeBad(s, 'header section too large');
          return;
        }
        const m = /^(?:content-length|l)[ \t]*:[ \t]*([0-9]{1,9})[ \t]*$/im.exec(
          buf.subarray(0, he.end).toString('latin1'),
        );
        const total = he.bodyStart + (m ? Number(m[1]) : 0);
        if (total > MAX_MESSAGE_BYTES) return this.closeBad(s, 'message too large');
        if (buf.length < total) return;
        const one = buf.subarray(0, total);
        buf = buf.subarray(total);
        this.receive(one, peer, true);
      }
    };
    s.on('error', (err) => this.log.debug({ err: err.message, peer }, 'SIP TCP connection error'));
    s.on('close', () => this.conns.get(peerKey(peer)) === s && this.conns.delete(peerKey(peer)));
  }

  private closeBad(s: Socket, why: string): void {
    this.stats.malformed++;
    this.limited.warn(
      `bad|${s.remoteAddress}`,
      { peer: `${s.remoteAddress}:${s.remotePort}`, error: why },
      'closing SIP TCP connection',
    );
    s.destroy();
  }

  private timedOut(s: Socket, peer: SipPeer, why: string): void {
    this.stats.tcpTimedOut++;
    this.limited.warn(`timeout|${peer.address}`, { peer, why }, 'closing SIP TCP connection');
    s.destroy();
  }

  /** TCP connections open now (accepted and our own). */
  get tcpConnections(): number {
    return this.conns.size;
  }

  private receive(buf: Buffer, from: SipPeer, stream: boolean, waitedMs = 0): void {
    this.stats.received++;
    let r: ReturnType<typeof parseSip>;
    try {
      r = parseSip(buf, { stream });
    } catch (err) {
      // The parser must never throw; if it does, the message is dropped, not the node.
      r = { ok: false as const, status: 400 as const, error: `parser failure: ${errorMessage(err)}` };
    }
    if (r.ok) {
      this.ladder?.record('in', r.message, from, buf, this.isKnown(from));
      this.emit('message', r.message, from, waitedMs);
      return;
    }
    this.stats.malformed++;
    const req = r.partial?.kind === 'request' ? r.partial : undefined;
    if (req && req.method !== 'ACK' && canAnswer(req)) {
      this.limited.warn(
        `malformed|${from.address}`,
        { peer: from, error: r.error, status: r.status },
        'rejected malformed SIP request',
      );
      this.send(errorResponse(req, r.status, r.error), from);
      return;
    }
    this.limited.warn(
      `unparseable|${from.address}`,
      { peer: from, error: r.error, bytes: buf.length },
      'dropped unparseable SIP message',
    );
  }
}

function canAnswer(req: SipRequest): boolean {
  return ['via', 'from', 'to', 'call-id', 'cseq'].every((h) => req.headers.has(h));
}

/** A stateless error answer to a request (copies the fields §8.2.6 asks for). */
export function errorResponse(req: SipRequest, status: number, why: string): SipResponse {
  const headers = new SipHeaders();
  for (const v of req.headers.getAll('via')) headers.append('via', v);
  for (const h of ['from', 'to', 'call-id', 'cseq']) headers.append(h, req.headers.get(h) ?? '');
  headers.append('warning', `399 tandem "${why.replace(/["\\\r\n]/g, ' ').slice(0, 200)}"`);
  return { kind: 'response', status, reason: REASONS[status] ?? 'Error', headers, body: Buffer.alloc(0) };
}
