// A Bus whose every request and event is signed by the node that sends it
// and checked by the node that receives it. Whoever can reach the NATS
// server, without a node's key, cannot speak for any node: a message whose
// signature does not verify against the named node's public key, or that is
// older than MAX_AGE_MS (a replay), is dropped and counted before any
// handler sees it. Handlers get the verified sender in BusMessage.from and
// check it against what the message claims (a heartbeat's node, an
// allocation's requester).
//
// Wire format: "TS1" | u8 len | node | u8 len | boot | f64 ts | 64-byte ed25519 signature | payload.
// The signature covers the subject too, so a message cannot be replayed on another subject.
// Replies travel unsigned on the requester's private inbox, which only the
// node that received the request may publish to (nats-server permissions).
import type { Bus, BusMessage, EventHandler, RequestHandler, Subscription } from './bus.ts';
import { encode } from './codec.ts';
import type { NodeIdentity, NodeKeyring } from './nodeKeys.ts';

const MAGIC = Buffer.from('TS1');
/** messages older (or further in the future) than this are refused: clocks must agree within it (NTP) */
export const MAX_AGE_MS = 30_000;

export type Refused = 'unsigned' | 'bad_signature' | 'unknown_node' | 'expired' | 'forged_claim';

export interface SignedBusOptions {
  identity: NodeIdentity;
  boot: string;
  keyring: NodeKeyring;
  /** a refused message, for counting and (rate-limited) logging */
  onRefused(reason: Refused, subject: string, claimed: string | undefined, detail?: string): void;
}

export class SignedBus implements Bus {
  private readonly head: Buffer;

  constructor(
    private readonly inner: Bus,
    private readonly o: SignedBusOptions,
  ) {
    const node = Buffer.from(o.identity.node);
    const boot = Buffer.from(o.boot);
    this.head = Buffer.concat([MAGIC, Buffer.from([node.length]), node, Buffer.from([boot.length]), boot]);
  }

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.inner.request(subject, this.seal(subject, data), timeoutMs);
  }

  serve(subject: string, handler: RequestHandler): Subscription {
    return this.inner.serve(subject, (m) => {
      const opened = this.open(m);
      if (!opened) return encode({ ok: false, code: 'unauthenticated', error: 'message not signed by a node of this cluster' });
      return handler(opened);
    });
  }

  publish(subject: string, data: Uint8Array): void {
    this.inner.publish(subject, this.seal(subject, data));
  }

  subscribe(subject: string, handler: EventHandler): Subscription {
    return this.inner.subscribe(subject, (m) => {
      const opened = this.open(m);
      if (opened) handler(opened);
    });
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private seal(subject: string, payload: Uint8Array): Uint8Array {
    const ts = Buffer.allocUnsafe(8);
    ts.writeDoubleBE(Date.now());
    const signed = Buffer.concat([Buffer.from(subject), this.head, ts, payload]);
    const sig = this.o.identity.sign(signed);
    return Buffer.concat([this.head, ts, sig, payload]);
  }

  private open(m: BusMessage): BusMessage | undefined {
    const b = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    if (b.length < MAGIC.length + 2 || !b.subarray(0, 3).equals(MAGIC)) return this.refuse('unsigned', m.subject, undefined);
    let at = 3;
    const nodeLen = b[at++]!;
    const node = b.toString('utf8', at, at + nodeLen);
    at += nodeLen;
    const bootLen = b[at++] ?? 0;
    const boot = b.toString('utf8', at, at + bootLen);
    at += bootLen;
    if (b.length < at + 8 + 64) return this.refuse('unsigned', m.subject, node);
    const headEnd = at;
    const ts = b.readDoubleBE(at);
    at += 8;
    const sig = b.subarray(at, at + 64);
    const payload = b.subarray(at + 64);
    if (!this.o.keyring.has(node)) return this.refuse('unknown_node', m.subject, node);
    const signed = Buffer.concat([Buffer.from(m.subject), b.subarray(0, headEnd + 8), payload]);
    if (!this.o.keyring.verify(node, signed, sig)) return this.refuse('bad_signature', m.subject, node);
    if (!(Math.abs(Date.now() - ts) <= MAX_AGE_MS)) return this.refuse('expired', m.subject, node);
    return {
      subject: m.subject,
      data: payload,
      from: { node, boot },
      refuse: (why: string) => this.o.onRefused('forged_claim', m.subject, node, why),
    };
  }

  private refuse(reason: Refused, subject: string, claimed: string | undefined): undefined {
    this.o.onRefused(reason, subject, claimed);
    return undefined;
  }
}
