// SRTP/SRTCP against published reference values: RFC 3711 B.3's session key
// derivation and libSRTP's reference packets for AES_CM_128_HMAC_SHA1_80
// (and _32), then what a receiver must refuse: tampered and replayed
// packets; and the rollover counter across the sequence number wrap.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SrtpContext, SrtpError, deriveSessionKey, parseInlineKey } from '../../src/media/srtp.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const MASTER_KEY = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
const MASTER_SALT = hex('0EC675AD498AFEEBB6960B3AABE6');
// libSRTP's srtp_validate(): SSRC 0xcafebabe, the key above, the default policy (AES_CM_128_HMAC_SHA1_80).
const RTP_PLAIN = hex('800f1234decafbadcafebabe abababababababababababababababab');
const SRTP = hex('800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb');
const RTCP_PLAIN = hex('81c8000bcafebabe abababababababababababababababab');
const SRTCP = hex('81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798');

describe('SRTP (RFC 3711)', () => {
  it('derives the session keys of RFC 3711 B.3', () => {
    assert.equal(deriveSessionKey(MASTER_KEY, MASTER_SALT, 0, 16).toString('hex'), 'c61e7a93744f39ee10734afe3ff7a087');
    assert.equal(
      deriveSessionKey(MASTER_KEY, MASTER_SALT, 1, 20).toString('hex').slice(0, 32),
      'cebe321f6ff7716b6fd4ab49af256a15',
    );
    assert.equal(deriveSessionKey(MASTER_KEY, MASTER_SALT, 2, 14).toString('hex'), '30cbbc08863d8c85d49db34a9ae1');
  });

  it("protects and unprotects libSRTP's reference RTP packet (80- and 32-bit tags)", () => {
    assert.deepEqual(new SrtpContext('AES_CM_128_HMAC_SHA1_80', MASTER_KEY, MASTER_SALT).protect(RTP_PLAIN), SRTP);
    assert.deepEqual(new SrtpContext('AES_CM_128_HMAC_SHA1_80', MASTER_KEY, MASTER_SALT).unprotect(SRTP), RTP_PLAIN);
    assert.deepEqual(
      new SrtpContext('AES_CM_128_HMAC_SHA1_32', MASTER_KEY, MASTER_SALT).protect(RTP_PLAIN),
      SRTP.subarray(0, 32),
    );
  });

  it("protects and unprotects libSRTP's reference RTCP packet (SRTCP)", () => {
    const tx = new SrtpContext('AES_CM_128_HMAC_SHA1_80', MASTER_KEY, MASTER_SALT);
    // Our SRTCP index starts at 0 (RFC 3711 §3.4); libSRTP's reference packet carries index 1: our second packet.
    tx.protectRtcp(RTCP_PLAIN);
    assert.deepEqual(tx.protectRtcp(RTCP_PLAIN), SRTCP);
    assert.deepEqual(
      new SrtpContext('AES_CM_128_HMAC_SHA1_80', MASTER_KEY, MASTER_SALT).unprotectRtcp(SRTCP),
      RTCP_PLAIN,
    );
  });

  it('refuses tampered and replayed packets, SRTP and SRTCP', () => {
    const rx = new SrtpContext('AES_CM_128_HMAC_SHA1_80', MASTER_KEY, MASTER_SALT);
    const bad = Buffer.from(SRTP);
    bad[20]! ^= 1;
    assert.throws(
      () => rx.unprotect(bad),
      (e: unknown) => e instanceof SrtpError && e.reason === 'auth',
    );
    rx.unprotect(SRTP);
    assert.throws(
      () => rx.unprotect(SRTP),
      (e: unknown) => e instanceof SrtpError && e.reason === 'replay',
    );
    assert.throws(
      () => rx.unprotect(SRTP.subarray(0, 14)),
      (e: unknown) => e instanceof SrtpError && e.reason === 'short',
    );
    rx.unprotectRtcp(SRTCP);
    assert.throws(
      () => rx.unprotectRtcp(SRTCP),
      (e: unknown) => e instanceof SrtpError && e.reason === 'replay',
    );
  });

  it('keeps the rollover counter across the sequence number wrap, and takes late packets inside the window', () => {
    const tx = new SrtpContext('AES_CM_128_HMAC_SHA1_80', MASTER_KEY, MASTER_SALT);
    const rx = new SrtpContext('AES_CM_128_HMAC_SHA1_80', MASTER_KEY, MASTER_SALT);
    const packet = (seq: number) => {
      const p = Buffer.from(RTP_PLAIN);
      p.writeUInt16BE(seq, 2);
      return p;
    };
    const sent = [65533, 65534, 65535, 0, 1, 2].map((s) => [s, tx.protect(packet(s))] as const);
    // 0 arrives before 65535 (reordered): both decrypt right, the second time each is a replay.
    for (const i of [0, 1, 3, 2, 4, 5]) assert.deepEqual(rx.unprotect(sent[i]![1]), packet(sent[i]![0]));
    assert.throws(
      () => rx.unprotect(sent[2]![1]),
      (e: unknown) => e instanceof SrtpError && e.reason === 'replay',
    );
  });

  it('reads an SDES inline key (RFC 4568) and refuses one of the wrong length', () => {
    const inline = Buffer.concat([MASTER_KEY, MASTER_SALT]).toString('base64');
    const k = parseInlineKey(`${inline}|2^20|1:4`);
    assert.deepEqual([k.key, k.salt], [MASTER_KEY, MASTER_SALT]);
    assert.throws(() => parseInlineKey(MASTER_KEY.toString('base64')), /30 bytes/);
  });
});
