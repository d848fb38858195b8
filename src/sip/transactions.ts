// The SIP transaction layer (RFC 3261 §17): matches retransmissions to the
// transaction they belong to, retransmits over UDP on timers A/E/G (T1
// doubling to T2), gives up on timers B/F/H (64*T1), ACKs non-2xx final
// responses itself, and retransmits a 2xx to INVITE until the ACK arrives
// (§13.3.1.4). The call manager (the TU) sees each new request once.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { parseCSeq, parseVias } from './grammar.ts';
import { randomHex } from '../random.ts';
import { REASONS, SipHeaders, type SipRequest, type SipResponse } from './message.ts';
import type { SipPeer, SipTransport } from './transport.ts';
import { splitHostPort } from '../config/hostPort.ts';

export const T1 = 500;
export const T2 = 4000;
const LINGER_MS = 32_000; // how long a finished transaction absorbs retransmissions

export const newBranch = () => `z9hG4bK${randomHex(8)}`;
export const newTag = () => randomHex(6);

export interface ResponseOptions {
  reason?: string;
  headers?: Array<[string, string]>;
  body?: Buffer;
  /** the To tag of the dialog this response creates (added to To when absent) */
  toTag?: string;
}

/**
 * What the TU's gate says of a new request before any state is kept for it:
 * pass (with the user it authenticated, if any), or a stateless answer.
 */
export type GateVerdict =
  | { pass: true; user?: string }
  | { respond: number; reason?: string; headers?: Array<[string, string]> };

export class ServerTransaction {
  final: SipResponse | undefined;
  /** the user whose Digest credentials the gate accepted for this request */
  authUser: string | undefined;
  last: SipResponse | undefined;
  cancelled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly request: SipRequest,
    readonly peer: SipPeer,
    private readonly stack: SipStack,
  ) {}

  get isInvite(): boolean {
    return this.request.method === 'INVITE';
  }

  respond(status: number, opts: ResponseOptions = {}): SipResponse {
    if (this.final) return this.final; // a transaction has one final response
    const res = buildResponse(this.request, status, opts);
    this.last = res;
    if (status >= 200) this.final = res;
    this.stack.sendResponse(this, res);
    return res;
  }

  /** @internal retransmits this transaction's final response on a timer until stopped */
  retransmitUntilStopped(onGiveUp: () => void): void {
    if (this.peer.transport !== 'UDP') return;
    let interval = T1;
    let elapsed = 0;
    const tick = () => {
      elapsed += interval;
      if (elapsed >= 64 * T1) return onGiveUp();
      if (this.final) this.stack.resend(this.final, this.peer);
      interval = Math.min(interval * 2, T2);
      this.timer = setTimeout(tick, interval);
    };
    this.timer = setTimeout(tick, interval);
  }

  /** @internal */ stopRetransmitting(): void {
    clearTimeout(this.timer);
  }
}

export function buildResponse(req: SipRequest, status: number, opts: ResponseOptions = {}): SipResponse {
  const headers = new SipHeaders();
  for (const v of req.headers.getAll('via')) headers.append('via', v);
  headers.append('from', req.headers.get('from')!);
  let to = req.headers.get('to')!;
  if (opts.toTag && status > 100 && !/;\s*tag\s*=/i.test(to)) to += `;tag=${opts.toTag}`;
  headers.append('to', to);
  headers.append('call-id', req.headers.get('call-id')!);
  headers.append('cseq', req.headers.get('cseq')!);
  // Proxies that record-routed see their entries again in answers that make a dialog (RFC 3261 12.1.1).
  if (status > 100 && status < 300)
    for (const v of req.headers.getAll('record-route')) headers.append('record-route', v);
  headers.append('server', 'Tandem');
  for (const [n, v] of opts.headers ?? []) headers.append(n, v);
  return {
    kind: 'response',
    status,
    reason: opts.reason ?? REASONS[status] ?? '',
    headers,
    body: opts.body ?? Buffer.alloc(0),
  };
}

interface ClientTransaction {
  request: SipRequest;
  peer: SipPeer;
  onResponse: (res: SipResponse) => void;
  retransmit: NodeJS.Timeout | undefined;
  timeout: NodeJS.Timeout | undefined;
  done: boolean;
}

export interface SipStackEvents {
  /** a new request (not ACK, not CANCEL) */
  request: [tx: ServerTransaction];
  /** an ACK to a 2xx (end to end, outside any transaction) */
  ack: [req: SipRequest, from: SipPeer];
  /** a CANCEL matched a pending INVITE server transaction (already answered 200; the INVITE still needs its 487) */
  cancel: [invite: ServerTransaction];
  /** a 2xx to INVITE was never ACKed */
  ack_timeout: [invite: ServerTransaction];
}

export class SipStack extends EventEmitter<SipStackEvents> {
  private readonly servers = new Map<string, ServerTransaction>();
  private readonly clients = new Map<string, ClientTransaction>();
  /** 2xx responses to INVITE awaiting their ACK, by Call-ID + CSeq number */
  private readonly awaitingAck = new Map<string, ServerTransaction>();
  /** set by the TU: screens new requests before a transaction is kept (authentication, floods) */
  gate: ((req: SipRequest, from: SipPeer, waitedMs: number) => GateVerdict) | undefined;
  /** requests answered statelessly by the gate */
  statelessAnswers = 0;

  /** server and client transactions kept (including those lingering to absorb retransmissions) */
  get transactionCount(): number {
    return this.servers.size + this.clients.size;
  }

  constructor(
    readonly transport: SipTransport,
    /** how this node writes itself in Via and Contact: host:port */
    readonly sentBy: string,
    private readonly log: Logger,
  ) {
    super();
    transport.on('message', (m, from, waitedMs) =>
      m.kind === 'request' ? this.onRequest(m, from, waitedMs) : this.onResponse(m),
    );
  }

  /** Sends a request in a new client transaction; the response callback sees every response (a synthetic 408 on timeout). */
  request(req: SipRequest, to: SipPeer, onResponse: (res: SipResponse) => void): void {
    const branch = newBranch();
    const sentBy =
      to.transport === 'TLS' && this.transport.localTlsPort
        ? `${splitHostPort(this.sentBy).host}:${this.transport.localTlsPort}`
        : this.sentBy;
    req.headers.prepend('via', `SIP/2.0/${to.transport} ${sentBy};branch=${branch};rport`);
    if (!req.headers.has('max-forwards')) req.headers.set('max-forwards', '70');
    if (req.method === 'ACK') {
      this.transport.send(req, to);
      return;
    }
    const tx: ClientTransaction = {
      request: req,
      peer: to,
      onResponse,
      retransmit: undefined,
      timeout: undefined,
      done: false,
    };
    this.clients.set(`${branch}|${req.method}`, tx);
    this.transport.send(req, to);
    if (to.transport === 'UDP') {
      let interval = T1;
      const again = () => {
        this.transport.send(req, to);
        interval = req.method === 'INVITE' ? interval * 2 : Math.min(interval * 2, T2);
        tx.retransmit = setTimeout(again, interval);
      };
      tx.retransmit = setTimeout(again, interval);
    }
    tx.timeout = setTimeout(() => {
      this.finishClient(branch, tx);
      onResponse(buildResponse(req, 408, { reason: 'Request Timeout (no answer)' }));
    }, 64 * T1);
  }

  /** CANCEL for an INVITE this stack sent (same branch, §9.1). */
  cancel(invite: SipRequest, to: SipPeer): void {
    const top = invite.headers.get('via')!;
    const headers = new SipHeaders();
    headers.append('via', top);
    headers.append('max-forwards', '70');
    for (const h of ['from', 'to', 'call-id']) headers.append(h, invite.headers.get(h)!);
    headers.append('cseq', `${parseCSeq(invite.headers.get('cseq')!)!.seq} CANCEL`);
    const req: SipRequest = { kind: 'request', method: 'CANCEL', uri: invite.uri, headers, body: Buffer.alloc(0) };
    const branch = /branch=([^;,\s]+)/.exec(top)?.[1] ?? newBranch();
    const tx: ClientTransaction = {
      request: req,
      peer: to,
      onResponse: () => {},
      retransmit: undefined,
      timeout: undefined,
      done: false,
    };
    this.clients.set(`${branch}|CANCEL`, tx);
    this.transport.send(req, to);
    tx.timeout = setTimeout(() => this.finishClient(branch, tx), 64 * T1);
  }

  /** @internal */ sendResponse(tx: ServerTransaction, res: SipResponse): void {
    this.transport.send(res, tx.peer);
    if (res.status < 200 || !tx.isInvite) return;
    if (res.status < 300) {
      // The 2xx is retransmitted by the UAS core until the end-to-end ACK (§13.3.1.4).
      const key = ackKey(tx.request);
      this.awaitingAck.set(key, tx);
      tx.retransmitUntilStopped(() => {
        this.awaitingAck.delete(key);
        this.emit('ack_timeout', tx);
      });
      if (tx.peer.transport !== 'UDP') setTimeout(() => this.awaitingAck.delete(key), 64 * T1).unref();
    } else {
      tx.retransmitUntilStopped(() => undefined);
    }
  }

  /** @internal */ resend(res: SipResponse, to: SipPeer): void {
    this.transport.send(res, to);
  }

  private onRequest(req: SipRequest, from: SipPeer, waitedMs: number): void {
    const vias = parseVias(req.headers.getAll('via'))!;
    const top = vias[0]!;
    // rport (RFC 3581) and received: answers go back where the request came from.
    const branch = top.params.get('branch') ?? '';
    const sentBy = `${top.host}:${top.port ?? 5060}`;
    if (req.method === 'ACK') {
      const inv = this.servers.get(`${branch}|${sentBy}|INVITE`);
      if (inv?.final && inv.final.status >= 300) {
        inv.stopRetransmitting(); // ACK of our error answer: hop by hop, absorbed here
        return;
      }
      const waiting = this.awaitingAck.get(ackKey(req));
      if (waiting) {
        waiting.stopRetransmitting();
        this.awaitingAck.delete(ackKey(req));
      }
      this.emit('ack', req, from);
      return;
    }
    const key = `${branch}|${sentBy}|${req.method}`;
    const existing = this.servers.get(key);
    if (existing) {
      if (existing.last) this.transport.send(existing.last, existing.peer); // a retransmission
      return;
    }
    // A CANCEL for no INVITE of ours: 481 without keeping anything (a flood of them costs no memory).
    if (req.method === 'CANCEL') {
      const inv = this.servers.get(`${branch}|${sentBy}|INVITE`);
      if (!inv || inv.final) {
        this.statelessAnswers++;
        this.transport.send(buildResponse(req, 481, { toTag: statelessTag(req) }), from);
        return;
      }
    }
    let authUser: string | undefined;
    if (req.method !== 'CANCEL' && this.gate) {
      const v = this.gate(req, from, waitedMs);
      if ('respond' in v) {
        this.statelessAnswers++;
        const opts: ResponseOptions = { toTag: statelessTag(req) };
        if (v.reason !== undefined) opts.reason = v.reason;
        if (v.headers) opts.headers = v.headers;
        this.transport.send(buildResponse(req, v.respond, opts), from);
        return;
      }
      authUser = v.user;
    }
    const tx = new ServerTransaction(req, from, this);
    tx.authUser = authUser;
    this.servers.set(key, tx);
    setTimeout(() => this.servers.delete(key), LINGER_MS + 64 * T1).unref();
    if (req.method === 'CANCEL') {
      const inv = this.servers.get(`${branch}|${sentBy}|INVITE`)!;
      tx.respond(200);
      inv.cancelled = true;
      this.emit('cancel', inv);
      return;
    }
    this.emit('request', tx);
  }

  private onResponse(res: SipResponse): void {
    const vias = parseVias(res.headers.getAll('via'))!;
    const branch = vias[0]?.params.get('branch') ?? '';
    const cseq = parseCSeq(res.headers.get('cseq')!)!;
    const tx = this.clients.get(`${branch}|${cseq.method}`);
    if (!tx) {
      // A retransmitted 2xx to an INVITE whose transaction is over: the TU re-ACKs it.
      if (cseq.method === 'INVITE' && res.status >= 200 && res.status < 300) this.retransmitted2xx?.(res);
      else
        this.log.debug(
          { status: res.status, cseq: res.headers.get('cseq') },
          'response matches no transaction; dropped',
        );
      return;
    }
    if (tx.done) return;
    clearTimeout(tx.retransmit);
    tx.retransmit = undefined;
    if (res.status < 200) {
      if (tx.request.method === 'INVITE') clearTimeout(tx.timeout); // the TU decides how long it rings
      tx.onResponse(res);
      return;
    }
    if (tx.request.method === 'INVITE' && res.status >= 300) this.ackError(tx, res);
    this.finishClient(branch, tx);
    tx.onResponse(res);
  }

  /** Set by the call layer: re-sends the ACK for a 2xx that arrives again. */
  retransmitted2xx: ((res: SipResponse) => void) | undefined;

  private ackError(tx: ClientTransaction, res: SipResponse): void {
    const headers = new SipHeaders();
    headers.append('via', tx.request.headers.get('via')!);
    headers.append('max-forwards', '70');
    headers.append('from', tx.request.headers.get('from')!);
    headers.append('to', res.headers.get('to')!);
    headers.append('call-id', tx.request.headers.get('call-id')!);
    headers.append('cseq', `${parseCSeq(tx.request.headers.get('cseq')!)!.seq} ACK`);
    this.transport.send(
      { kind: 'request', method: 'ACK', uri: tx.request.uri, headers, body: Buffer.alloc(0) },
      tx.peer,
    );
  }

  private finishClient(branch: string, tx: ClientTransaction): void {
    tx.done = true;
    clearTimeout(tx.retransmit);
    clearTimeout(tx.timeout);
    // Linger so retransmitted final responses are absorbed, not passed up again.
    setTimeout(() => this.clients.delete(`${branch}|${tx.request.method}`), LINGER_MS).unref();
  }

  close(): void {
    for (const tx of this.clients.values()) {
      clearTimeout(tx.retransmit);
      clearTimeout(tx.timeout);
    }
    for (const tx of this.servers.values()) tx.stopRetransmitting();
    this.clients.clear();
    this.servers.clear();
    this.awaitingAck.clear();
  }
}

/** A To tag for stateless answers: the same for a request and its retransmissions. */
export function statelessTag(req: SipRequest): string {
  return createHash('sha256')
    .update(`${req.headers.get('call-id') ?? ''}|${req.headers.get('cseq') ?? ''}|${req.headers.get('via') ?? ''}`)
    .digest('hex')
    .slice(0, 12);
}

function ackKey(req: SipRequest): string {
  return `${req.headers.get('call-id')}|${parseCSeq(req.headers.get('cseq')!)!.seq}`;
}
