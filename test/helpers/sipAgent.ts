// A minimal SIP user agent over UDP for tests and the SIP load generator:
// registers with Digest, places calls (INVITE, ACK, BYE), answers calls
// automatically, and sends raw bytes for bad-input tests. It uses Tandem's
// own parser and serializer; the phones in the end-to-end tests are baresip.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { digestResponse } from '../../src/sip/digest.ts';
import { parseNameAddr } from '../../src/sip/grammar.ts';
import { SipHeaders, serialize, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { parseSip } from '../../src/sip/parser.ts';
import { randomHex } from '../../src/random.ts';
import { ALAW_DECODE, ULAW_DECODE, encodeG711 } from '../../src/media/g711.ts';
import { SrtpContext, parseInlineKey, type SrtpSuite } from '../../src/media/srtp.ts';
import { toneShare } from './audio.ts';

const rnd = () => randomHex(6);

/** eventPt: the payload type of telephone-event (undefined: the agent offers none, a SIP INFO phone). */
export function offerSdp(
  port: number,
  codecs: Array<0 | 8 | 9> = [0],
  eventPt: number | undefined = 101,
  crypto?: { tag: number; suite: string; key: string },
): string {
  const names: Record<number, string> = { 0: 'PCMU/8000', 8: 'PCMA/8000', 9: 'G722/8000' };
  return [
    'v=0',
    `o=agent ${Date.now()} 1 IN IP4 127.0.0.1`,
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} ${crypto ? 'RTP/SAVP' : 'RTP/AVP'} ${codecs.join(' ')}${eventPt !== undefined ? ` ${eventPt}` : ''}`,
    ...codecs.map((c) => `a=rtpmap:${c} ${names[c]}`),
    ...(crypto ? [`a=crypto:${crypto.tag} ${crypto.suite} inline:${crypto.key}`] : []),
    ...(eventPt !== undefined ? [`a=rtpmap:${eventPt} telephone-event/8000`, `a=fmtp:${eventPt} 0-15`] : []),
    'a=sendrecv',
    '',
  ].join('\r\n');
}

/** The audio address of an SDP body (where to send RTP), and its text. */
export function sdpMedia(body: Buffer): { address: string; port: number; text: string } {
  const t = body.toString();
  return { address: /c=IN IP4 (\S+)/.exec(t)![1]!, port: Number(/m=audio (\d+)/.exec(t)![1]), text: t };
}

export interface AgentCall {
  callId: string;
  fromTag: string;
  toHeader: string;
  cseq: number;
  final: SipResponse;
}

export class SipAgent {
  private readonly waiting = new Map<
    string,
    { resolve: (r: SipResponse) => void; provisional?: (r: SipResponse) => void }
  >();
  readonly received: SipRequest[] = [];
  /** every response that reached this agent, retransmissions included */
  readonly responses: SipResponse[] = [];
  /** calls this agent answered: its To (with tag), the caller's From, where in-dialog requests go */
  private readonly answered = new Map<string, { toHeader: string; fromHeader: string; target: string; cseq: number }>();
  /** REGISTER datagrams sent (retransmissions included) */
  sends = 0;
  /** answer INVITEs and other requests from the call manager (off: let them ring unanswered) */
  autoAnswer = true;
  /** the payload types this agent offers and answers with (0 PCMU, 8 PCMA) */
  codecs: Array<0 | 8 | 9> = [0];
  /** answer every new INVITE with this refusal instead (a carrier that is busy or out of service) */
  refuseInvites: { status: number; reason: string } | undefined;
  /** answer 488 to an INVITE that offers none of `codecs` (as real phones do; off: answer with them anyway) */
  strictCodecs = false;
  /** the payload type this agent gives telephone-event in its SDP and sends digits with (undefined: none) */
  eventPt: number | undefined = 101;
  port = 0;
  /** RTP that reached this agent: arrival time and payload type and bytes */
  readonly rtp: Array<{ at: number; pt: number; payload: Buffer }> = [];
  private rtpSock: Socket | undefined;
  rtpPort = 0;
  /**
   * SRTP (SDES): the agent answers offers with RTP/SAVP and this key (it does
   * not encrypt what it sends), and decrypts what it receives with the key of
   * the latest offer it answered; packets that do not authenticate are counted.
   */
  srtpKey: string | undefined;
  private srtpRx: SrtpContext | undefined;
  srtpFailures = 0;

  private constructor(
    private readonly sock: Socket,
    readonly number: string,
    readonly password: string,
    readonly registrar: { host: string; port: number },
  ) {
    sock.on('message', (buf, rinfo) => this.onMessage(buf, rinfo));
  }

  static async open(number: string, password: string, registrar: string): Promise<SipAgent> {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const [host, port] = registrar.split(':') as [string, string];
    const a = new SipAgent(sock, number, password, { host, port: Number(port) });
    a.port = sock.address().port;
    const rtp = createSocket('udp4');
    await new Promise<void>((r) => rtp.bind(0, '127.0.0.1', () => r()));
    rtp.on('message', (raw) => {
      let m: Buffer = raw;
      if (a.srtpRx) {
        try {
          m = a.srtpRx.unprotect(raw);
        } catch {
          a.srtpFailures++;
          return;
        }
      }
      if (m.length > 12 && m[0]! >> 6 === 2) a.rtp.push({ at: Date.now(), pt: m[1]! & 0x7f, payload: m.subarray(12) });
    });
    a.rtpSock = rtp;
    a.rtpPort = rtp.address().port;
    return a;
  }

  get contact(): string {
    return `sip:${this.number}@127.0.0.1:${this.port}`;
  }

  sendRaw(data: Buffer | string): void {
    this.sock.send(typeof data === 'string' ? Buffer.from(data) : data, this.registrar.port, this.registrar.host);
  }

  /** Waits for the next message of any kind (raw-input tests). */
  nextResponse(callId: string, timeoutMs = 2000): Promise<SipResponse> {
    return this.expect(`${callId}|*`, timeoutMs);
  }

  private expect(key: string, timeoutMs: number, provisional?: (r: SipResponse) => void): Promise<SipResponse> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`${this.number}: no final response for ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(key, {
        resolve: (r) => {
          clearTimeout(t);
          resolve(r);
        },
        ...(provisional ? { provisional } : {}),
      });
    });
  }

  private onMessage(buf: Buffer, from: RemoteInfo): void {
    const p = parseSip(buf);
    if (!p.ok) return;
    const m = p.message;
    if (m.kind === 'response') {
      this.responses.push(m);
      const callId = m.headers.get('call-id') ?? '';
      const cseq = m.headers.get('cseq') ?? '';
      const w = this.waiting.get(`${callId}|${cseq}`) ?? this.waiting.get(`${callId}|*`);
      if (!w) return;
      if (m.status < 200) return w.provisional?.(m);
      this.waiting.delete(`${callId}|${cseq}`);
      this.waiting.delete(`${callId}|*`);
      w.resolve(m);
      return;
    }
    this.received.push(m);
    if (this.autoAnswer) this.answer(m, from);
  }

  /** Answers what the call manager sends: INVITE with 200 + SDP, BYE/CANCEL/OPTIONS/INFO with 200. */
  answer(req: SipRequest, peer: { address: string; port: number }): void {
    if (req.method === 'ACK') return;
    if (req.method === 'INVITE' && this.refuseInvites && !/;\s*tag=/.test(req.headers.get('to') ?? ''))
      return this.reject(req, peer, this.refuseInvites.status, this.refuseInvites.reason);
    if (req.method === 'INVITE' && this.strictCodecs) {
      const offered = (/^m=audio \d+ \S+ ([\d ]+)/m.exec(req.body.toString())?.[1] ?? '').split(' ').map(Number);
      if (!this.codecs.some((c) => offered.includes(c))) return this.reject(req, peer, 488, 'Not Acceptable Here');
    }
    const headers = new SipHeaders();
    for (const v of req.headers.getAll('via')) headers.append('via', v);
    headers.append('from', req.headers.get('from')!);
    const to = req.headers.get('to')!;
    const callId = req.headers.get('call-id')!;
    let local = this.answered.get(callId);
    if (!local && req.method === 'INVITE') {
      local = {
        toHeader: /;\s*tag=/.test(to) ? to : `${to};tag=${rnd()}`,
        fromHeader: req.headers.get('from')!,
        target: parseNameAddr(req.headers.get('contact') ?? '')?.uri ?? '',
        cseq: 100,
      };
      this.answered.set(callId, local);
    }
    headers.append('to', /;\s*tag=/.test(to) ? to : (local?.toHeader ?? `${to};tag=${rnd()}`));
    headers.append('call-id', req.headers.get('call-id')!);
    headers.append('cseq', req.headers.get('cseq')!);
    // As a UAS must (RFC 3261 12.1.1): the proxies that record-routed stay in the dialog.
    for (const rr of req.headers.getAll('record-route')) headers.append('record-route', rr);
    headers.append('contact', `<${this.contact}>`);
    let body = Buffer.alloc(0);
    if (req.method === 'INVITE') {
      headers.append('content-type', 'application/sdp');
      let crypto: { tag: number; suite: string; key: string } | undefined;
      const line = this.srtpKey ? this.decryptWith(req.body) : undefined;
      if (line) crypto = { ...line, key: this.srtpKey! };
      body = Buffer.from(offerSdp(this.rtpPort, this.codecs, this.eventPt, crypto));
    }
    this.sock.send(serialize({ kind: 'response', status: 200, reason: 'OK', headers, body }), peer.port, peer.address);
  }

  /** Refuses an INVITE the call manager sent (486 Busy Here, 603 Decline...). */
  reject(req: SipRequest, peer: { address: string; port: number }, status: number, reason: string): void {
    const headers = new SipHeaders();
    for (const v of req.headers.getAll('via')) headers.append('via', v);
    headers.append('from', req.headers.get('from')!);
    const to = req.headers.get('to')!;
    headers.append('to', /;\s*tag=/.test(to) ? to : `${to};tag=${rnd()}`);
    headers.append('call-id', req.headers.get('call-id')!);
    headers.append('cseq', req.headers.get('cseq')!);
    this.sock.send(
      serialize({ kind: 'response', status, reason, headers, body: Buffer.alloc(0) }),
      peer.port,
      peer.address,
    );
  }

  /** Decrypts what arrives from now on with the key of this SDP's crypto line (an answer, a 183's early media); returns its tag and suite. */
  decryptWith(sdp: Buffer | string): { tag: number; suite: string } | undefined {
    const line = /a=crypto:(\d+) (AES_CM_128_HMAC_SHA1_(?:80|32)) inline:([A-Za-z0-9+/]{40})/.exec(sdp.toString());
    if (!line) return undefined;
    const { key, salt } = parseInlineKey(line[3]!);
    this.srtpRx = new SrtpContext(line[2] as SrtpSuite, key, salt);
    return { tag: Number(line[1]), suite: line[2]! };
  }

  private base(method: string, callId: string, fromTag: string, to: string, cseq: number): SipHeaders {
    const h = new SipHeaders();
    h.append('via', `SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${rnd()};rport`);
    h.append('max-forwards', '70');
    h.append('from', `<sip:${this.number}@${this.registrar.host}:${this.registrar.port}>;tag=${fromTag}`);
    h.append('to', to);
    h.append('call-id', callId);
    h.append('cseq', `${cseq} ${method}`);
    h.append('contact', `<${this.contact}>`);
    return h;
  }

  /**
   * REGISTER (with Digest when challenged). `retransmit`: as a UDP client
   * does (RFC 3261 Timer E: again after 500 ms, 1 s, 2 s until an answer);
   * `sends` counts the datagrams it took.
   */
  async register(
    extra: Array<[string, string]> = [],
    expires = 600,
    password = this.password,
    retransmit = false,
  ): Promise<SipResponse> {
    const callId = `reg-${rnd()}`;
    const fromTag = rnd();
    const uri = `sip:${this.registrar.host}:${this.registrar.port}`;
    const to = `<sip:${this.number}@${this.registrar.host}:${this.registrar.port}>`;
    const send = async (cseq: number, auth?: string) => {
      const h = this.base('REGISTER', callId, fromTag, to, cseq);
      h.append('expires', String(expires));
      if (auth) h.append('authorization', auth);
      for (const [n, v] of extra) h.append(n, v);
      const p = this.expect(`${callId}|${cseq} REGISTER`, retransmit ? 4000 : 3000);
      const bytes = serialize({ kind: 'request', method: 'REGISTER', uri, headers: h, body: Buffer.alloc(0) });
      let answered = false;
      const settled = p.then(
        () => (answered = true),
        () => (answered = true),
      );
      for (let wait = 500; ; wait *= 2) {
        this.sends++;
        this.sock.send(bytes, this.registrar.port, this.registrar.host);
        if (!retransmit) break;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([settled, new Promise((r) => (timer = setTimeout(r, wait)))]);
        clearTimeout(timer);
        if (answered || wait >= 2000) break;
      }
      return p;
    };
    const first = await send(1);
    if (first.status !== 401) return first;
    const auth = digestResponse({
      user: this.number,
      password,
      method: 'REGISTER',
      uri,
      challenge: first.headers.getAll('www-authenticate'),
    });
    return send(2, auth);
  }

  /** INVITE, then ACK on a 2xx; resolves with the final response. */
  async invite(
    number: string,
    opts: {
      extra?: Array<[string, string]>;
      sdp?: string;
      timeoutMs?: number;
      onProvisional?: (r: SipResponse) => void;
      noAck?: boolean;
      password?: string;
    } = {},
  ): Promise<AgentCall> {
    const callId = `call-${rnd()}`;
    const fromTag = rnd();
    const uri = `sip:${number}@${this.registrar.host}:${this.registrar.port}`;
    const h = this.base('INVITE', callId, fromTag, `<${uri}>`, 1);
    h.append('content-type', 'application/sdp');
    for (const [n, v] of opts.extra ?? []) h.append(n, v);
    const body = Buffer.from(opts.sdp ?? offerSdp(this.rtpPort, this.codecs, this.eventPt));
    let cseq = 1;
    let res = await this.sendInvite(uri, h, body, callId, cseq, opts);
    if (res.status === 407) {
      // Challenged: ACK went with the transaction; again with credentials (same Call-ID, next CSeq).
      this.ackError(h, res, uri, cseq);
      cseq = 2;
      h.set('cseq', `2 INVITE`);
      h.set('via', `SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${rnd()};rport`);
      h.set(
        'proxy-authorization',
        digestResponse({
          user: this.number,
          password: opts.password ?? this.password,
          method: 'INVITE',
          uri,
          challenge: res.headers.getAll('proxy-authenticate'),
        }),
      );
      res = await this.sendInvite(uri, h, body, callId, cseq, opts);
    }
    const call: AgentCall = { callId, fromTag, toHeader: res.headers.get('to')!, cseq, final: res };
    if (res.status >= 200 && res.status < 300 && !opts.noAck) this.ack(call);
    return call;
  }

  /** The ACK of an answered INVITE; with `sdp`, the answer to an offer the 200 carried (a delayed offer). */
  ack(call: AgentCall, sdp?: string): void {
    this.inDialog(call, 'ACK', call.cseq, sdp ? [['content-type', 'application/sdp']] : [], sdp);
  }

  private sendInvite(
    uri: string,
    h: SipHeaders,
    body: Buffer,
    callId: string,
    cseq: number,
    opts: { timeoutMs?: number; onProvisional?: (r: SipResponse) => void },
  ): Promise<SipResponse> {
    const final = this.expect(`${callId}|${cseq} INVITE`, opts.timeoutMs ?? 5000, opts.onProvisional);
    this.sock.send(
      serialize({ kind: 'request', method: 'INVITE', uri, headers: h, body }),
      this.registrar.port,
      this.registrar.host,
    );
    return final;
  }

  /** The ACK of a non-2xx final answer (same branch as the INVITE). */
  private ackError(invite: SipHeaders, res: SipResponse, uri: string, cseq: number): void {
    const h = new SipHeaders();
    h.append('via', invite.get('via')!);
    h.append('max-forwards', '70');
    h.append('from', invite.get('from')!);
    h.append('to', res.headers.get('to')!);
    h.append('call-id', invite.get('call-id')!);
    h.append('cseq', `${cseq} ACK`);
    this.sock.send(
      serialize({ kind: 'request', method: 'ACK', uri, headers: h, body: Buffer.alloc(0) }),
      this.registrar.port,
      this.registrar.host,
    );
  }

  /** Blind transfer: REFER the other party of `call` to `target` (a number); resolves with the answer (202). */
  async refer(call: AgentCall, target: string): Promise<SipResponse> {
    call.cseq++;
    const p = this.expect(`${call.callId}|${call.cseq} REFER`, 3000);
    this.inDialog(call, 'REFER', call.cseq, [
      ['refer-to', `<sip:${target}@${this.registrar.host}>`],
      ['referred-by', `<sip:${this.number}@${this.registrar.host}>`],
    ]);
    return p;
  }

  async bye(call: AgentCall): Promise<SipResponse> {
    call.cseq++;
    const p = this.expect(`${call.callId}|${call.cseq} BYE`, 3000);
    this.inDialog(call, 'BYE', call.cseq);
    return p;
  }

  /** Sends an in-dialog request (e.g. a re-INVITE with SDP) in a call this agent placed; resolves with the answer (ACKed if a 2xx INVITE). */
  async request(call: AgentCall, method: string, body?: { type: string; data: string }): Promise<SipResponse> {
    call.cseq++;
    const cseq = call.cseq;
    const p = this.expect(`${call.callId}|${cseq} ${method}`, 3000);
    this.inDialog(call, method, cseq, body ? [['content-type', body.type]] : [], body?.data);
    const res = await p;
    if (method === 'INVITE' && res.status >= 200 && res.status < 300) this.inDialog(call, 'ACK', cseq);
    return res;
  }

  private inDialog(
    call: AgentCall,
    method: string,
    cseq: number,
    extra: Array<[string, string]> = [],
    body?: string,
  ): void {
    const target =
      parseNameAddr(call.final.headers.get('contact') ?? '')?.uri ??
      `sip:${this.registrar.host}:${this.registrar.port}`;
    const h = this.base(method, call.callId, call.fromTag, call.toHeader, cseq);
    for (const [n, v] of extra) h.append(n, v);
    this.sock.send(
      serialize({ kind: 'request', method, uri: target, headers: h, body: Buffer.from(body ?? '') }),
      this.registrar.port,
      this.registrar.host,
    );
  }

  /** Sends an in-dialog request in a call this agent answered (e.g. INFO with DTMF, or BYE). */
  requestInAnsweredCall(method: string, body?: { type: string; data: string }): Promise<SipResponse> {
    const [callId, d] = [...this.answered.entries()].at(-1)!;
    d.cseq++;
    const h = new SipHeaders();
    h.append('via', `SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${rnd()};rport`);
    h.append('max-forwards', '70');
    h.append('from', d.toHeader);
    h.append('to', d.fromHeader);
    h.append('call-id', callId);
    h.append('cseq', `${d.cseq} ${method}`);
    h.append('contact', `<${this.contact}>`);
    if (body) h.append('content-type', body.type);
    const p = this.expect(`${callId}|${d.cseq} ${method}`, 3000);
    this.sock.send(
      serialize({ kind: 'request', method, uri: d.target, headers: h, body: Buffer.from(body?.data ?? '') }),
      this.registrar.port,
      this.registrar.host,
    );
    return p;
  }

  /** Sends `count` RTP packets of 160 bytes (20 ms of G.711 `pt`) every 20 ms from this agent's RTP port to `to`. */
  async streamRtp(to: { address: string; port: number }, pt: number, count: number): Promise<void> {
    const ssrc = 0x1234abcd;
    for (let i = 0; i < count; i++) {
      const b = Buffer.alloc(172, 0x55);
      b[0] = 0x80;
      b[1] = pt;
      b.writeUInt16BE(i & 0xffff, 2);
      b.writeUInt32BE(i * 160, 4);
      b.writeUInt32BE(ssrc, 8);
      this.rtpSock!.send(b, to.port, to.address);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends `count` 20 ms packets of a G.711 sine at `freqHz` every 20 ms (an audible, recognisable party); PCMU unless `pt` is 8 (PCMA). */
  async streamTone(to: { address: string; port: number }, freqHz: number, count: number, pt: 0 | 8 = 0): Promise<void> {
    const pcm = new Int16Array(160);
    const out = new Uint8Array(160);
    for (let i = 0; i < count; i++) {
      for (let k = 0; k < 160; k++) pcm[k] = Math.round(8000 * Math.sin((2 * Math.PI * freqHz * (i * 160 + k)) / 8000));
      encodeG711(pt === 8 ? 'PCMA' : 'PCMU', pcm, out);
      const b = Buffer.alloc(172);
      b[0] = 0x80;
      b[1] = pt;
      b.writeUInt16BE(i & 0xffff, 2);
      b.writeUInt32BE(i * 160, 4);
      b.writeUInt32BE(0x70e5, 8);
      b.set(out, 12);
      this.rtpSock!.send(b, to.port, to.address);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends a DTMF digit as RFC 4733 telephone-events with this agent's payload type (start, updates, three ends). */
  async sendDigit(to: { address: string; port: number }, digit: string): Promise<void> {
    const event = '0123456789*#'.indexOf(digit);
    const ts = 160_000;
    for (let i = 1; i <= 8; i++) {
      const end = i === 8;
      const b = Buffer.alloc(16);
      b[0] = 0x80;
      b[1] = (i === 1 ? 0x80 : 0) | this.eventPt!;
      b.writeUInt16BE(1000 + i, 2);
      b.writeUInt32BE(ts, 4);
      b.writeUInt32BE(0x5eed, 8);
      b[12] = event;
      b[13] = (end ? 0x80 : 0) | 10;
      b.writeUInt16BE(i * 160, 14);
      for (let k = 0; k < (end ? 3 : 1); k++) this.rtpSock!.send(b, to.port, to.address);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** G.711 audio (PCMU or PCMA) received since `since` (ms epoch), decoded. */
  heardSince(since: number): Int16Array {
    const packets = this.rtp.filter((p) => p.at >= since && (p.pt === 0 || p.pt === 8));
    const out: number[] = [];
    for (const p of packets) for (const b of p.payload) out.push(p.pt === 0 ? ULAW_DECODE[b]! : ALAW_DECODE[b]!);
    return Int16Array.from(out);
  }

  close(): void {
    this.sock.close();
    this.rtpSock?.close();
  }
}

/**
 * How much of `from`'s tone at `hz` `listener` hears when `from` streams it
 * to `to` for a second (in `from`'s first codec, PCMA or else PCMU): the
 * audio check of a call's direction.
 */
export async function hearsTone(
  from: SipAgent,
  to: { address: string; port: number },
  listener: SipAgent,
  hz: number,
): Promise<number> {
  const t0 = Date.now();
  await from.streamTone(to, hz, 50, from.codecs[0] === 8 ? 8 : 0);
  return toneShare(listener.heardSince(t0 + 300), 8000, hz);
}
