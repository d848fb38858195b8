// One SIP dialog between this call manager and a phone (RFC 3261 §12): the
// identifiers, the CSeq counter and where in-dialog requests go. A call
// manager is a back-to-back user agent, so every call leg is its own dialog.
import { parseCSeq, parseNameAddr } from '../sip/grammar.ts';
import { randomHex } from '../random.ts';
import { SipHeaders, type SipRequest, type SipResponse } from '../sip/message.ts';
import { newTag } from '../sip/transactions.ts';
import type { SipPeer } from '../sip/transport.ts';

/** The Record-Route entries of a message, top first (each header may hold several, comma-separated). */
function recordRoutes(m: SipRequest | SipResponse): string[] {
  return m.headers
    .getAll('record-route')
    .flatMap((v) => v.split(/,(?=\s*<)/).map((x) => x.trim()))
    .filter((x) => x.length > 0);
}

export class Dialog {
  private localSeq: number;
  /**
   * The route set (RFC 3261 12.1): proxies on the way that asked to stay in
   * the dialog (a carrier's SIP server in front of its gateways). Requests
   * in the dialog carry them as Route headers and go to the dialog's peer,
   * the first of them (loose routing).
   */
  private routeSet: string[] = [];

  private constructor(
    readonly callId: string,
    readonly localTag: string,
    public remoteTag: string | undefined,
    /** From/To values as this side writes them */
    readonly localUri: string,
    readonly remoteUri: string,
    /** the phone's Contact: Request-URI of in-dialog requests */
    public remoteTarget: string,
    /** where the phone is (its registered source address) */
    public peer: SipPeer,
    readonly contact: string,
    localSeq: number,
  ) {
    this.localSeq = localSeq;
  }

  /** The dialog an incoming INVITE creates on our (UAS) side. */
  static forIncoming(invite: SipRequest, peer: SipPeer, contact: string): Dialog {
    const from = parseNameAddr(invite.headers.get('from')!)!;
    const to = parseNameAddr(invite.headers.get('to')!)!;
    const target = parseNameAddr(invite.headers.get('contact') ?? '')?.uri ?? from.uri;
    const d = new Dialog(
      invite.headers.get('call-id')!,
      newTag(),
      from.params.get('tag'),
      `<${to.uri}>`,
      invite.headers
        .get('from')!
        .replace(/;\s*tag\s*=\s*[^;]+/i, '')
        .trim(),
      target,
      peer,
      contact,
      0,
    );
    // The UAS keeps the INVITE's Record-Route in order.
    d.routeSet = recordRoutes(invite);
    return d;
  }

  /** A dialog we start with an INVITE to a phone (UAC side). */
  static outgoing(opts: {
    fromUri: string;
    fromDisplay?: string;
    toUri: string;
    target: string;
    peer: SipPeer;
    contact: string;
    callIdHost: string;
  }): Dialog {
    const display = opts.fromDisplay ? `"${opts.fromDisplay.replace(/["\\]/g, '')}" ` : '';
    return new Dialog(
      `${randomHex(10)}@${opts.callIdHost}`,
      newTag(),
      undefined,
      `${display}<${opts.fromUri}>`,
      `<${opts.toUri}>`,
      opts.target,
      opts.peer,
      opts.contact,
      0,
    );
  }

  /** A new request inside the dialog (or the initial INVITE). */
  request(method: string, body?: { type: string; data: Buffer }, extra: Array<[string, string]> = []): SipRequest {
    const headers = new SipHeaders();
    const seq = method === 'ACK' || method === 'CANCEL' ? this.localSeq : ++this.localSeq;
    headers.append('max-forwards', '70');
    headers.append('from', `${this.localUri};tag=${this.localTag}`);
    headers.append('to', this.remoteTag ? `${this.remoteUri};tag=${this.remoteTag}` : this.remoteUri);
    headers.append('call-id', this.callId);
    headers.append('cseq', `${seq} ${method}`);
    headers.append('contact', `<${this.contact}>`);
    for (const r of this.routeSet) headers.append('route', r);
    headers.append('user-agent', 'Tandem');
    for (const [n, v] of extra) headers.append(n, v);
    if (body) headers.append('content-type', body.type);
    return { kind: 'request', method, uri: this.remoteTarget, headers, body: body?.data ?? Buffer.alloc(0) };
  }

  /** The ACK for a 2xx to one of our INVITEs (same CSeq number, new transaction). */
  ackFor(res: SipResponse): SipRequest {
    const seq = parseCSeq(res.headers.get('cseq')!)!.seq;
    const req = this.request('ACK');
    req.headers.set('cseq', `${seq} ACK`);
    return req;
  }

  /** Learns the remote tag and target from a response to our INVITE. */
  learn(res: SipResponse): void {
    const to = parseNameAddr(res.headers.get('to') ?? '');
    if (to?.params.get('tag')) this.remoteTag = to.params.get('tag');
    const c = parseNameAddr(res.headers.get('contact') ?? '');
    if (c && c.uri !== '*') this.remoteTarget = c.uri;
    // The UAC takes the 2xx's Record-Route reversed (RFC 3261 12.1.2).
    if (res.status >= 200 && res.status < 300) this.routeSet = recordRoutes(res).reverse();
  }

  /** The key that finds this dialog from a request the phone sends in it. */
  get key(): string {
    return `${this.callId}|${this.localTag}`;
  }
}

/** The dialog key of an in-dialog request that reached us (our tag is in To). */
export function dialogKeyOf(req: SipRequest): string | undefined {
  const tag = parseNameAddr(req.headers.get('to') ?? '')?.params.get('tag');
  return tag ? `${req.headers.get('call-id')}|${tag}` : undefined;
}
