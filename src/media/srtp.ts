// SRTP and SRTCP (RFC 3711) for the suites phones offer with SDES (RFC 4568):
// AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32. One SrtpContext per
// direction of a leg: session keys derived from the master key and salt
// (key derivation rate 0), AES in counter mode for the payload, HMAC-SHA1
// over the packet and the rollover counter, the rollover counter estimated
// from sequence numbers (RFC 3711 §3.3.1), and a 64-packet replay window.
// Small enough to write on node:crypto (AES-CTR and HMAC-SHA1) rather than
// bind a native library; checked against RFC 3711's key derivation vectors
// and libSRTP's reference packets.
import { createCipheriv, createHmac, randomBytes, timingSafeEqual, type Cipher } from 'node:crypto';
import { TandemError } from '../errors.ts';

export type SrtpSuite = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32';
export const SRTP_SUITES: readonly SrtpSuite[] = ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];

/** Why a packet was refused (counted per leg, never decrypted). */
export type SrtpRefusal = 'short' | 'auth' | 'replay';

export class SrtpError extends TandemError {
  constructor(
    readonly reason: SrtpRefusal,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const MASTER_KEY = 16;
const MASTER_SALT = 14;
const WINDOW = 64;

/** A fresh SRTP master key and salt (30 bytes), base64 as in an SDP inline key. */
export const newSrtpKey = (): string => randomBytes(MASTER_KEY + MASTER_SALT).toString('base64');

/** AES-CM as RFC 3711 §4.1.1 uses it: keystream = AES-CTR(key, IV) over the data. */
function aesCm(key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('aes-128-ctr', key, iv);
  return Buffer.concat([c.update(data), c.final()]);
}

/** Session key derivation (§4.3.1), kdr = 0: AES-CM(master key, (label || 0) XOR master salt, shifted 16 bits). */
export function deriveSessionKey(masterKey: Buffer, masterSalt: Buffer, label: number, length: number): Buffer {
  const iv = Buffer.alloc(16);
  masterSalt.copy(iv, 0);
  iv[7]! ^= label; // the label sits in front of the 48-bit index (zero with kdr = 0)
  return aesCm(masterKey, iv, Buffer.alloc(length));
}

/** The inline key of an SDES crypto attribute: master key then master salt, base64 (RFC 4568 §6.1). */
export function parseInlineKey(inline: string): { key: Buffer; salt: Buffer } {
  const raw = Buffer.from(inline.split('|')[0]!, 'base64');
  if (raw.length !== MASTER_KEY + MASTER_SALT)
    throw new Error(`an AES_CM_128 inline key is ${MASTER_KEY + MASTER_SALT} bytes, not ${raw.length}`);
  return { key: raw.subarray(0, MASTER_KEY), salt: raw.subarray(MASTER_KEY) };
}

interface SessionKeys {
  key: Buffer;
  auth: Buffer;
  salt: Buffer;
  /** AES-128 in ECB over counter blocks: AES-CM's keystream with one cipher object for the stream's life */
  ecb: Cipher;
}

const sessionKeys = (masterKey: Buffer, masterSalt: Buffer, first: number): SessionKeys => {
  const key = deriveSessionKey(masterKey, masterSalt, first, 16);
  const ecb = createCipheriv('aes-128-ecb', key, null);
  ecb.setAutoPadding(false);
  return {
    key,
    auth: deriveSessionKey(masterKey, masterSalt, first + 1, 20),
    salt: deriveSessionKey(masterKey, masterSalt, first + 2, 14),
    ecb,
  };
};

/**
 * XORs AES-CM's keystream for `iv` (its low 16 bits zero: the block counter)
 * over src[from, from+n) into dst at `at`. One ECB update of the counter
 * blocks, not a cipher object per packet.
 */
function xorKeystream(
  keys: SessionKeys,
  iv: Buffer,
  src: Buffer,
  from: number,
  n: number,
  dst: Buffer,
  at: number,
): void {
  const blocks = Math.ceil(n / 16);
  const ctr = Buffer.allocUnsafe(blocks * 16);
  for (let j = 0; j < blocks; j++) {
    iv.copy(ctr, j * 16);
    ctr.writeUInt16BE(j, j * 16 + 14);
  }
  const ks = keys.ecb.update(ctr);
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i]! ^ ks[i]!;
}

/** One direction of one SRTP stream: protects what we send, or checks and decrypts what we receive. */
export class SrtpContext {
  private readonly rtp: SessionKeys;
  private readonly rtcp: SessionKeys;
  private readonly tagLength: number;
  /** the rollover counter and highest sequence number seen (or sent) */
  private roc = 0;
  private highest = -1;
  /** replay windows: the last index received in each of 64 slots (index % 64), -1 for none */
  private readonly seen = new Float64Array(WINDOW).fill(-1);
  private srtcpIndex = 0;
  private highestRtcp = -1;
  private readonly seenRtcp = new Float64Array(WINDOW).fill(-1);

  constructor(
    readonly suite: SrtpSuite,
    masterKey: Buffer,
    masterSalt: Buffer,
  ) {
    if (masterKey.length !== MASTER_KEY || masterSalt.length !== MASTER_SALT)
      throw new Error('AES_CM_128 needs a 16-byte master key and a 14-byte master salt');
    this.rtp = sessionKeys(masterKey, masterSalt, 0);
    this.rtcp = sessionKeys(masterKey, masterSalt, 3);
    this.tagLength = suite === 'AES_CM_128_HMAC_SHA1_80' ? 10 : 4;
  }

  /** Encrypts and authenticates an RTP packet (header kept in clear). */
  protect(packet: Buffer): Buffer {
    const hl = headerLength(packet);
    const seq = packet.readUInt16BE(2);
    if (this.highest >= 0 && seq < this.highest && this.highest - seq > 0x8000) this.roc = (this.roc + 1) >>> 0;
    if (this.highest < 0 || ((seq - this.highest) & 0xffff) < 0x8000) this.highest = seq;
    const index = this.roc * 0x10000 + seq;
    const out = Buffer.allocUnsafe(packet.length + this.tagLength);
    packet.copy(out, 0, 0, hl);
    xorKeystream(this.rtp, iv(this.rtp.salt, packet.readUInt32BE(8), index), packet, hl, packet.length - hl, out, hl);
    this.tag(this.rtp.auth, out.subarray(0, packet.length), this.roc).copy(out, packet.length, 0, this.tagLength);
    return out;
  }

  /** Checks, decrypts and returns an SRTP packet; throws SrtpError (tampered, replayed, too short). */
  unprotect(packet: Buffer): Buffer {
    if (packet.length < 12 + this.tagLength) throw new SrtpError('short', 'packet shorter than a header and a tag');
    const hl = headerLength(packet);
    const end = packet.length - this.tagLength;
    if (end < hl) throw new SrtpError('short', 'packet shorter than its header and a tag');
    const seq = packet.readUInt16BE(2);
    const roc = this.estimateRoc(seq);
    const index = roc * 0x10000 + seq;
    if (this.replayed(index)) throw new SrtpError('replay', `packet ${index} already received`);
    const expected = this.tag(this.rtp.auth, packet.subarray(0, end), roc);
    if (!timingSafeEqual(expected, packet.subarray(end)))
      throw new SrtpError('auth', 'authentication tag does not match');
    this.accept(index, roc, seq);
    const out = Buffer.allocUnsafe(end);
    packet.copy(out, 0, 0, hl);
    xorKeystream(this.rtp, iv(this.rtp.salt, packet.readUInt32BE(8), index), packet, hl, end - hl, out, hl);
    return out;
  }

  /** Encrypts and authenticates an RTCP compound packet (SRTCP, §3.4: E flag set, index after the payload). */
  protectRtcp(packet: Buffer): Buffer {
    const index = this.srtcpIndex;
    this.srtcpIndex = (this.srtcpIndex + 1) & 0x7fffffff;
    const body = aesCm(this.rtcp.key, iv(this.rtcp.salt, packet.readUInt32BE(4), index), packet.subarray(8));
    const e = Buffer.alloc(4);
    e.writeUInt32BE((0x80000000 | index) >>> 0);
    const out = Buffer.concat([packet.subarray(0, 8), body, e]);
    return Buffer.concat([out, this.tag(this.rtcp.auth, out)]);
  }

  /** Checks, decrypts and returns an SRTCP packet; throws SrtpError. */
  unprotectRtcp(packet: Buffer): Buffer {
    if (packet.length < 8 + 4 + this.tagLength) throw new SrtpError('short', 'SRTCP packet too short');
    const end = packet.length - this.tagLength;
    const expected = this.tag(this.rtcp.auth, packet.subarray(0, end));
    if (!timingSafeEqual(expected, packet.subarray(end)))
      throw new SrtpError('auth', 'SRTCP authentication tag does not match');
    const word = packet.readUInt32BE(end - 4);
    const index = word & 0x7fffffff;
    if (isReplay(this.seenRtcp, this.highestRtcp, index))
      throw new SrtpError('replay', `SRTCP packet ${index} already received`);
    this.seenRtcp[index % WINDOW] = index;
    if (index > this.highestRtcp) this.highestRtcp = index;
    const encrypted = (word & 0x80000000) !== 0;
    const payload = packet.subarray(8, end - 4);
    const body = encrypted ? aesCm(this.rtcp.key, iv(this.rtcp.salt, packet.readUInt32BE(4), index), payload) : payload;
    return Buffer.concat([packet.subarray(0, 8), body]);
  }

  private tag(key: Buffer, data: Buffer, roc?: number): Buffer {
    const h = createHmac('sha1', key).update(data);
    if (roc !== undefined) {
      const r = Buffer.alloc(4);
      r.writeUInt32BE(roc >>> 0);
      h.update(r);
    }
    return h.digest().subarray(0, this.tagLength);
  }

  /** RFC 3711 §3.3.1: the rollover counter this sequence number most likely belongs to. */
  private estimateRoc(seq: number): number {
    if (this.highest < 0) return this.roc;
    if (this.highest < 0x8000) return seq - this.highest > 0x8000 ? (this.roc - 1) >>> 0 : this.roc;
    return this.highest - 0x8000 > seq ? (this.roc + 1) >>> 0 : this.roc;
  }

  private get highestIndex(): number {
    return this.highest < 0 ? -1 : this.roc * 0x10000 + this.highest;
  }

  private replayed(index: number): boolean {
    return isReplay(this.seen, this.highestIndex, index);
  }

  /** An authenticated packet is marked received and moves the rollover counter forward. */
  private accept(index: number, roc: number, seq: number): void {
    this.seen[index % WINDOW] = index;
    if (index > this.highestIndex) {
      this.roc = roc;
      this.highest = seq;
    }
  }
}

/**
 * A packet older than the window, or one inside it whose slot already holds
 * its index (a slot holds the latest index received among those 64 apart,
 * so inside the window it can only hold this one if this one came).
 */
function isReplay(seen: Float64Array, top: number, index: number): boolean {
  if (top < 0 || index > top) return false;
  return top - index >= WINDOW || seen[index % WINDOW] === index;
}

/** The AES-CM IV (§4.1.1): (salt << 16) XOR (SSRC << 64) XOR (index << 16). */
function iv(salt: Buffer, ssrc: number, index: number): Buffer {
  const v = Buffer.alloc(16);
  salt.copy(v, 0);
  v.writeUInt32BE((v.readUInt32BE(4) ^ ssrc) >>> 0, 4);
  // the 48-bit index occupies bytes 8-13
  const hi = Math.floor(index / 0x100000000);
  v.writeUInt16BE((v.readUInt16BE(8) ^ hi) & 0xffff, 8);
  v.writeUInt32BE((v.readUInt32BE(10) ^ index) >>> 0, 10);
  return v;
}

/** RTP header length: 12 bytes, the CSRCs and the extension (kept in clear). */
function headerLength(p: Buffer): number {
  if (p.length < 12) throw new SrtpError('short', 'shorter than an RTP header');
  let n = 12 + (p[0]! & 0x0f) * 4;
  if (p[0]! & 0x10) {
    if (p.length < n + 4) throw new SrtpError('short', 'truncated header extension');
    n += 4 + p.readUInt16BE(n + 2) * 4;
  }
  if (n > p.length) throw new SrtpError('short', 'header longer than the packet');
  return n;
}
