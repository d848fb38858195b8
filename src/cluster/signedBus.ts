// A Bus whose every request and event is authenticated by the node that
// sends it and checked by the node that receives it. Whoever can reach the
// NATS server, without a node's key, cannot speak for any node: a message
// that does not verify against the named node's key, or that is older than
// MAX_AGE_MS (a replay), is dropped and counted before any handler sees it.
// Handlers get the verified sender in BusMessage.from and check it against
// what the message claims (a heartbeat's node, an allocation's requester).
//
// Two modes, one check:
// - Events (fan-out: announcements, load, registry) carry one HMAC tag per
//   receiver, each under the key the sender shares with that receiver (as
//   requests do): a receiver checks one HMAC (~2 us) instead of an ed25519
//   signature (~60 us, and every node once read every peer's heartbeat, so this was
//   an idle node's largest cost and grew with the cluster). A receiver the
//   sender has not heard from yet finds no tag for itself and drops the
//   event; it is in the next one, once the sender heard the receiver (its
//   first messages are signed, as are a sender's events while it knows no
//   peer). A node cannot make another's tags, so it still cannot speak for it.
// - Requests to one node (allocations, call signals, status) carry an
//   HMAC-SHA256 under a key only the two nodes share; confidential ones (SDP
//   with SRTP keys, media requests with keys, a config to apply) are sealed
//   instead: AES-256-GCM under that key, so no one on the bus reads them.
//   Each node makes an X25519 key pair at boot and every message it sends
//   carries the public half with the node key's signature over (node, boot,
//   it) (checked once per peer and boot, then cached); the pair key is
//   HKDF(ECDH) of the two. An ed25519 verification costs ~60 µs, an HMAC
//   ~2 µs and a GCM seal and open tens (a cipher object each): this keeps
//   the allocation path fast. Until the sender has heard from the target
//   (and so knows its X25519 key) it signs instead, in clear, unless the
//   request is confidential: then it waits for the target's key (any
//   message from it) and fails rather than send in clear.
// The authenticated data always includes the subject, so a message cannot be
// replayed on another subject. Replies travel unsigned on the requester's
// private inbox, which only the node that received the request may publish
// to (nats-server permissions); the answer to a signed request (its sender
// did not know the target's key yet) carries the target's certificate, so a
// first probe is enough for both sides to share a key.
//
// Wire: "TS3" | mode ('S'|'M'|'E'|'T') | u8 len, node | u8 len, boot | x25519 key (32) |
//       its certificate (64) | f64 time | signature (64) | payload
//                                        | HMAC (32) | payload
//                                        | nonce (12) | GCM tag (16) | ciphertext
//                                        | u16 n | n x (u8 len, node~boot, HMAC/128) | payload
// Reply to a signed request: "TS3" | 'K' | u8 len, node | u8 len, boot | x25519 key | certificate | payload
// Reply to a sealed request: "TS3" | 'R' | nonce | GCM tag | ciphertext
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import {
  ConfidentialChannelError,
  type Bus,
  type BusLink,
  type BusMessage,
  type EventHandler,
  type RequestHandler,
  type RequestOptions,
  type Subscription,
} from './bus.ts';
import { randomBuffer } from '../random.ts';
import { encode } from './codec.ts';
import type { NodeIdentity, NodeKeyring } from './nodeKeys.ts';
import { isLaterBoot } from './pid.ts';

const MAGIC = Buffer.from('TS3');
const SIGNED = 0x53; // 'S'
const MACED = 0x4d; // 'M'
const SEALED = 0x45; // 'E'
const TAGGED = 0x54; // 'T'
/** an answer to a signed request, with the answering node's certified key */
const KEYED = 0x4b; // 'K'
/** bytes of a receiver's tag on an event (HMAC-SHA256 truncated, as RFC 2104 allows) */
const TAG = 16;
const NONCE = 12;
const GCM_TAG = 16;
/** how long a confidential request waits for a target it has not heard from (the answer to any request to it carries its key) */
const PEER_WAIT_MS = 2000;
/** messages older (or further in the future) than this are refused: clocks must agree within it (NTP) */
export const MAX_AGE_MS = 30_000;
const MAX_PEERS = 1024;

export type Refused = 'unsigned' | 'bad_signature' | 'bad_certificate' | 'unknown_node' | 'expired' | 'forged_claim';

export interface SignedBusOptions {
  identity: NodeIdentity;
  boot: string;
  keyring: NodeKeyring;
  /** the node a subject's requests go to (tandem.<cluster>.node.<n>.*), if any */
  targetOf?: (subject: string) => string | undefined;
  /** a refused message, for counting and (rate-limited) logging */
  onRefused(reason: Refused, subject: string, claimed: string | undefined, detail?: string): void;
}

interface Peer {
  boot: string;
  kx: Buffer;
  /** the HMAC and AES-256-GCM key this node shares with that incarnation */
  key: Buffer;
}

/** The answer to a request that does not verify (also how a sender learns its pair key went stale). */
const UNAUTHENTICATED = encode({
  ok: false,
  code: 'unauthenticated',
  error: 'message not signed by a node of this cluster',
});
const isUnauthenticated = (b: Uint8Array) =>
  b.length === UNAUTHENTICATED.length && Buffer.from(b).equals(UNAUTHENTICATED);

const certData = (node: string, boot: string, kx: Uint8Array) =>
  Buffer.concat([Buffer.from(`tandem-kx|${node}|${boot}|`), kx]);

export class SignedBus implements Bus {
  private readonly head: Buffer;
  private readonly kxPrivate: KeyObject;
  /** peers by node: their current incarnation's X25519 key and our pair key (learned from their certificates) */
  private readonly peers = new Map<string, Peer>();
  /** the pair key a sealed request came under (its reply is sealed with it) */
  private readonly sealedWith = new WeakMap<BusMessage, Buffer>();
  /** requests that came signed: their sender lacks this node's key, which their answer carries */
  private readonly unkeyed = new WeakSet<BusMessage>();
  /** confidential requests waiting to hear from a node (its key) */
  private readonly waiting = new Map<string, Array<(p: Peer) => void>>();
  /** the key of this node's tag on its own events (its own subscribers read them too) */
  private readonly selfKey = randomBytes(32);
  /** this incarnation's label on tagged events ("node~boot") */
  private myLabel: Buffer | undefined;

  constructor(
    private readonly inner: Bus,
    private readonly o: SignedBusOptions,
  ) {
    const kx = generateKeyPairSync('x25519');
    this.kxPrivate = kx.privateKey;
    const kxRaw = Buffer.from(kx.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const node = Buffer.from(o.identity.node);
    const boot = Buffer.from(o.boot);
    const cert = o.identity.sign(certData(o.identity.node, o.boot, kxRaw));
    // Everything after the mode byte up to the time is the same in every message.
    this.head = Buffer.concat([Buffer.from([node.length]), node, Buffer.from([boot.length]), boot, kxRaw, cert]);
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number, opts?: RequestOptions): Promise<Uint8Array> {
    const target = this.o.targetOf?.(subject);
    const confidential = opts?.confidential === true && target !== undefined;
    let peer = target !== undefined ? this.peers.get(target) : undefined;
    if (!peer && confidential) peer = await this.peerOf(target, Math.min(timeoutMs, PEER_WAIT_MS));
    if (!peer) return this.keyFromReply(target, await this.inner.request(subject, this.seal(subject, data), timeoutMs));
    const reply = await this.inner.request(subject, this.seal(subject, data, peer.key, confidential), timeoutMs);
    if (!isUnauthenticated(reply)) return confidential ? openReply(peer.key, subject, reply) : reply;
    // The target restarted (new boot, new X25519 key) and we have not heard it yet.
    if (this.peers.get(target!) === peer) this.peers.delete(target!);
    if (confidential) {
      const fresh = await this.peerOf(target, Math.min(timeoutMs, PEER_WAIT_MS));
      return openReply(
        fresh.key,
        subject,
        await this.inner.request(subject, this.seal(subject, data, fresh.key, true), timeoutMs),
      );
    }
    return this.keyFromReply(target, await this.inner.request(subject, this.seal(subject, data), timeoutMs));
  }

  /**
   * The answer to a signed request (sent before this node knew the target's
   * key) carries the target's certified X25519 key: learned here, so the
   * first request to a peer (a liveness probe) is all it takes to share a key.
   */
  private keyFromReply(target: string | undefined, reply: Uint8Array): Uint8Array {
    const b = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
    if (b.length < 6 || b[3] !== KEYED || !b.subarray(0, 3).equals(MAGIC)) return reply;
    const { node, boot, at } = readSender(b);
    if (b.length < at + 96) return reply;
    // Only the target's own key (its certificate is checked by learn) is taken from its answer.
    if (node === target && this.o.keyring.has(node))
      this.learn(node, boot, b.subarray(at, at + 32), b.subarray(at + 32, at + 96));
    return b.subarray(at + 96);
  }

  /** The pair key with `node`, waiting up to `ms` to hear from it; ConfidentialChannelError if it stays silent. */
  private peerOf(node: string, ms: number): Promise<Peer> {
    const known = this.peers.get(node);
    if (known) return Promise.resolve(known);
    return new Promise<Peer>((resolve, reject) => {
      const list = this.waiting.get(node) ?? [];
      const done = (p: Peer) => {
        clearTimeout(timer);
        resolve(p);
      };
      const timer = setTimeout(() => {
        const l = this.waiting.get(node);
        const i = l?.indexOf(done) ?? -1;
        if (i >= 0) l!.splice(i, 1);
        if (l?.length === 0) this.waiting.delete(node);
        reject(new ConfidentialChannelError(node, ms));
      }, ms);
      list.push(done);
      this.waiting.set(node, list);
    });
  }

  serve(subject: string, handler: RequestHandler): Subscription {
    return this.inner.serve(subject, async (m) => {
      const opened = this.open(m);
      if (!opened) return UNAUTHENTICATED;
      const reply = await handler(opened);
      // A sealed request gets a sealed answer (it may carry secrets too: a device's SRTP key).
      const key = this.sealedWith.get(opened);
      if (key) return sealReply(key, subject, reply);
      // The requester signed: it does not know this node's key yet, so the answer teaches it.
      return this.unkeyed.has(opened) ? Buffer.concat([MAGIC, Buffer.from([KEYED]), this.head, reply]) : reply;
    });
  }

  publish(subject: string, data: Uint8Array): void {
    // Knowing no peer yet (just started), nobody could read tags: signed, so every node learns this one's key.
    this.inner.publish(subject, this.peers.size ? this.tag(subject, data) : this.seal(subject, data));
  }

  /** An event with one tag per known peer (and this node), each under the key shared with it. */
  private tag(subject: string, payload: Uint8Array): Uint8Array {
    const ts = Buffer.allocUnsafe(8);
    ts.writeDoubleBE(Date.now());
    const mode = Buffer.from([TAGGED]);
    const authed = Buffer.concat([Buffer.from(subject), MAGIC, mode, this.head, ts, payload]);
    // Each tag names its receiver's incarnation: a receiver that restarted finds none for itself (not a forgery).
    const me = this.o.identity.node;
    const receivers: Array<[string, Buffer]> = [
      [`${me}~${this.o.boot}`, this.selfKey],
      ...[...this.peers].filter(([n]) => n !== me).map(([n, p]): [string, Buffer] => [`${n}~${p.boot}`, p.key]),
    ];
    const count = Buffer.allocUnsafe(2);
    count.writeUInt16BE(receivers.length);
    const tags = receivers.map(([n, key]) => {
      const name = Buffer.from(n);
      return Buffer.concat([
        Buffer.from([name.length]),
        name,
        createHmac('sha256', key).update(authed).digest().subarray(0, TAG),
      ]);
    });
    return Buffer.concat([MAGIC, mode, this.head, ts, count, ...tags, payload]);
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

  link(): BusLink {
    return this.inner.link();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Signs (no key given), MACs or (confidential) seals a message with the pair key of the target. */
  private seal(subject: string, payload: Uint8Array, pairKey?: Buffer, confidential = false): Uint8Array {
    const ts = Buffer.allocUnsafe(8);
    ts.writeDoubleBE(Date.now());
    const mode = Buffer.from([!pairKey ? SIGNED : confidential ? SEALED : MACED]);
    if (!pairKey || !confidential) {
      const authed = Buffer.concat([Buffer.from(subject), MAGIC, mode, this.head, ts, payload]);
      const auth = pairKey ? createHmac('sha256', pairKey).update(authed).digest() : this.o.identity.sign(authed);
      return Buffer.concat([MAGIC, mode, this.head, ts, auth, payload]);
    }
    const nonce = randomBuffer(NONCE);
    const c = createCipheriv('aes-256-gcm', pairKey, nonce);
    c.setAAD(Buffer.concat([Buffer.from(subject), MAGIC, mode, this.head, ts]));
    const body = Buffer.concat([c.update(payload), c.final()]);
    return Buffer.concat([MAGIC, mode, this.head, ts, nonce, c.getAuthTag(), body]);
  }

  private open(m: BusMessage): BusMessage | undefined {
    const b = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    if (
      b.length < 6 ||
      !b.subarray(0, 3).equals(MAGIC) ||
      (b[3] !== SIGNED && b[3] !== MACED && b[3] !== SEALED && b[3] !== TAGGED)
    )
      return this.refuse('unsigned', m.subject, undefined);
    const mode = b[3]!;
    const sender = readSender(b);
    const { node, boot } = sender;
    let at = sender.at;
    if (mode === TAGGED) return this.openTagged(m, b, at, node, boot);
    const authLen = mode === SIGNED ? 64 : mode === MACED ? 32 : NONCE + GCM_TAG;
    if (b.length < at + 32 + 64 + 8 + authLen) return this.refuse('unsigned', m.subject, node);
    const kx = b.subarray(at, at + 32);
    const cert = b.subarray(at + 32, at + 96);
    at += 96;
    const ts = b.readDoubleBE(at);
    at += 8;
    const authEnd = at + authLen;
    const auth = b.subarray(at, authEnd);
    const payload = b.subarray(authEnd);
    if (!this.o.keyring.has(node)) return this.refuse('unknown_node', m.subject, node);
    const peer = this.learn(node, boot, kx, cert);
    if (!peer) return this.refuse('bad_certificate', m.subject, node);
    let data: Uint8Array | undefined;
    if (mode === SIGNED) {
      if (this.o.keyring.verify(node, Buffer.concat([Buffer.from(m.subject), b.subarray(0, at), payload]), auth))
        data = payload;
    } else if (mode === MACED) {
      const mac = createHmac('sha256', peer.key)
        .update(Buffer.concat([Buffer.from(m.subject), b.subarray(0, at), payload]))
        .digest();
      if (timingSafeEqual(mac, auth)) data = payload;
    } else {
      data = openSealed(peer.key, auth, Buffer.concat([Buffer.from(m.subject), b.subarray(0, at)]), payload);
    }
    if (!data) return this.refuse('bad_signature', m.subject, node);
    if (!(Math.abs(Date.now() - ts) <= MAX_AGE_MS)) return this.refuse('expired', m.subject, node);
    const msg: BusMessage = {
      subject: m.subject,
      data,
      from: { node, boot },
      sealed: mode === SEALED,
      refuse: (why: string) => this.o.onRefused('forged_claim', m.subject, node, why),
    };
    if (mode === SEALED) this.sealedWith.set(msg, peer.key);
    if (mode === SIGNED) this.unkeyed.add(msg);
    return msg;
  }

  /** An event with a tag per receiver: this node's tag, under the key it shares with the sender. */
  private openTagged(m: BusMessage, b: Buffer, at: number, node: string, boot: string): BusMessage | undefined {
    if (b.length < at + 32 + 64 + 8 + 2) return this.refuse('unsigned', m.subject, node);
    const kx = b.subarray(at, at + 32);
    const cert = b.subarray(at + 32, at + 96);
    at += 96;
    const ts = b.readDoubleBE(at);
    at += 8;
    const headEnd = at;
    let count = b.readUInt16BE(at);
    at += 2;
    let mine: Buffer | undefined;
    const me = this.o.identity.node;
    // (compared as bytes: a heartbeat of a large cluster carries a label per receiver, and every node reads them all)
    const myName = (this.myLabel ??= Buffer.from(`${me}~${this.o.boot}`));
    for (; count > 0; count--) {
      const len = b[at];
      if (len === undefined || at + 1 + len + TAG > b.length) return this.refuse('unsigned', m.subject, node);
      if (!mine && len === myName.length && b.compare(myName, 0, len, at + 1, at + 1 + len) === 0)
        mine = b.subarray(at + 1 + len, at + 1 + len + TAG);
      at += 1 + len + TAG;
    }
    const payload = b.subarray(at);
    if (!this.o.keyring.has(node)) return this.refuse('unknown_node', m.subject, node);
    const own = node === me && boot === this.o.boot;
    const peer = own ? undefined : this.learn(node, boot, kx, cert);
    if (!own && !peer) return this.refuse('bad_certificate', m.subject, node);
    // Sent before the sender had heard this node: not addressed to it (it is in the next one).
    if (!mine) return undefined;
    const key = own ? this.selfKey : peer!.key;
    const expected = createHmac('sha256', key)
      .update(m.subject)
      .update(b.subarray(0, headEnd))
      .update(payload)
      .digest()
      .subarray(0, TAG);
    if (!timingSafeEqual(expected, mine)) return this.refuse('bad_signature', m.subject, node);
    if (!(Math.abs(Date.now() - ts) <= MAX_AGE_MS)) return this.refuse('expired', m.subject, node);
    return {
      subject: m.subject,
      data: payload,
      from: { node, boot },
      sealed: false,
      refuse: (why: string) => this.o.onRefused('forged_claim', m.subject, node, why),
    };
  }

  /**
   * The pair key with `node`'s incarnation `boot`, from the X25519 key its
   * node key certified; the certificate is checked once per incarnation.
   */
  private learn(node: string, boot: string, kx: Buffer, cert: Buffer): Peer | undefined {
    const known = this.peers.get(node);
    if (known && known.boot === boot && known.kx.equals(kx)) return known;
    if (!this.o.keyring.verify(node, certData(node, boot, kx), cert)) return undefined;
    // An older incarnation's message still in flight must not replace the current peer.
    const shared = diffieHellman({
      privateKey: this.kxPrivate,
      publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: kx.toString('base64url') }, format: 'jwk' }),
    });
    const [a, c] = [`${this.o.identity.node}~${this.o.boot}`, `${node}~${boot}`].sort();
    const key = Buffer.from(hkdfSync('sha256', shared, 'tandem-bus', `${a}|${c}`, 32));
    const peer: Peer = { boot, kx: Buffer.from(kx), key };
    if (!known || known.boot === boot || isLaterBoot(boot, known.boot)) {
      if (!known && this.peers.size >= MAX_PEERS) this.peers.clear();
      this.peers.set(node, peer);
      const waiting = this.waiting.get(node);
      this.waiting.delete(node);
      for (const w of waiting ?? []) w(peer);
    }
    return peer;
  }

  private refuse(reason: Refused, subject: string, claimed: string | undefined): undefined {
    this.o.onRefused(reason, subject, claimed);
    return undefined;
  }
}

/** The sender's node and boot after the magic and mode bytes, and where what follows them starts. */
function readSender(b: Buffer): { node: string; boot: string; at: number } {
  let at = 4;
  const nodeLen = b[at++]!;
  const node = b.toString('utf8', at, at + nodeLen);
  at += nodeLen;
  const bootLen = b[at++] ?? 0;
  const boot = b.toString('utf8', at, at + bootLen);
  return { node, boot, at: at + bootLen };
}

/** Decrypts a sealed payload (nonce and tag in `auth`); undefined when it does not authenticate. */
function openSealed(key: Buffer, auth: Buffer, aad: Buffer, body: Buffer): Buffer | undefined {
  try {
    const d = createDecipheriv('aes-256-gcm', key, auth.subarray(0, NONCE));
    d.setAAD(aad);
    d.setAuthTag(auth.subarray(NONCE));
    return Buffer.concat([d.update(body), d.final()]);
  } catch {
    return undefined;
  }
}

const REPLY = 0x52; // 'R'

/** A sealed reply: "TS3" | 'R' | nonce | GCM tag | ciphertext, bound to the request's subject. */
function sealReply(key: Buffer, subject: string, payload: Uint8Array): Uint8Array {
  const nonce = randomBuffer(NONCE);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(Buffer.from(`${subject}|reply`));
  const body = Buffer.concat([c.update(payload), c.final()]);
  return Buffer.concat([MAGIC, Buffer.from([REPLY]), nonce, c.getAuthTag(), body]);
}

/** Opens a sealed reply; ConfidentialChannelError when it is not one or does not authenticate. */
function openReply(key: Buffer, subject: string, reply: Uint8Array): Uint8Array {
  const b = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
  const head = 4 + NONCE + GCM_TAG;
  const opened =
    b.length >= head && b.subarray(0, 3).equals(MAGIC) && b[3] === REPLY
      ? openSealed(key, b.subarray(4, head), Buffer.from(`${subject}|reply`), b.subarray(head))
      : undefined;
  if (!opened) throw new ConfidentialChannelError(subject, 0, 'the answer to a sealed request was not sealed');
  return opened;
}
