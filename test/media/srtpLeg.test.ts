// An SRTP leg over real sockets: what a phone sends with its key arrives
// decrypted; a tampered packet, a packet under another key and a replayed
// packet are dropped and counted (per leg and for the node's metrics), and
// none of them latches or reaches the device; what the leg sends and its
// RTCP reports are SRTP/SRTCP the phone's key opens, never the clear payload.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { PortPool } from '../../src/media/portPool.ts';
import { RtpLeg, newLegCounters } from '../../src/media/rtpLeg.ts';
import { writeRtpHeader } from '../../src/media/rtp.ts';
import { SrtpContext, parseInlineKey } from '../../src/media/srtp.ts';
import { eventually } from '../helpers/cluster.ts';

const SUITE = 'AES_CM_128_HMAC_SHA1_80' as const;
const context = (inline: string) => {
  const { key, salt } = parseInlineKey(inline);
  return new SrtpContext(SUITE, key, salt);
};
const clear = (seq: number, fill: number) => {
  const b = Buffer.alloc(172, fill);
  writeRtpHeader(b, 0, seq, seq * 160, 0x1234);
  return b;
};

describe('SRTP leg', () => {
  it('decrypts what the far end sends; drops and counts tampered, foreign-key and replayed packets; sends SRTP and SRTCP', async () => {
    const phoneKey = Buffer.alloc(30, 1).toString('base64');
    const legKey = Buffer.alloc(30, 2).toString('base64');
    const pool = new PortPool('127.0.0.1', 47300, 47399);
    const bound = await pool.bind();
    const counters = newLegCounters();
    const leg = new RtpLeg(bound, '127.0.0.1', 'PCMU', 'sdp', counters);
    const got: Array<{ seq: number; first: number }> = [];
    leg.onPacket = (_l, p, rtp) => got.push({ seq: rtp.sequence, first: p[rtp.payloadOffset]! });
    const far = createSocket('udp4');
    await new Promise<void>((r) => far.bind(0, '127.0.0.1', () => r()));
    const fromLeg: Buffer[] = [];
    far.on('message', (m) => fromLeg.push(m));
    const farRtcp = createSocket('udp4');
    await new Promise<void>((r) => farRtcp.bind(far.address().port + 1, '127.0.0.1', () => r()));
    const rtcpFromLeg: Buffer[] = [];
    farRtcp.on('message', (m) => rtcpFromLeg.push(m));
    leg.setRemote({ address: '127.0.0.1', port: far.address().port });
    leg.setSrtp({ suite: SUITE, tx: legKey, rx: phoneKey });

    const phoneTx = context(phoneKey);
    const send = (b: Buffer) => far.send(b, bound.port, '127.0.0.1');
    const good = [1, 2, 3].map((s) => phoneTx.protect(clear(s, 0x55)));
    send(good[0]!);
    await eventually(() => got.length === 1, 1000, 'a good packet');
    assert.deepEqual(got[0], { seq: 1, first: 0x55 }, 'decrypted before the device sees it');
    // Tampered (one payload bit), and a packet under someone else's key.
    const tampered = Buffer.from(good[1]!);
    tampered[20]! ^= 1;
    send(tampered);
    send(context(Buffer.alloc(30, 3).toString('base64')).protect(clear(2, 0x55)));
    // Replayed.
    send(good[0]!);
    send(good[1]!);
    await eventually(() => got.length === 2, 1000, 'the next good packet');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      got.map((g) => g.seq),
      [1, 2],
    );
    assert.equal(leg.stats.srtpAuthFailures, 2);
    assert.equal(leg.stats.srtpReplays, 1);
    assert.deepEqual(
      { auth: counters.srtpAuthFailures, replay: counters.srtpReplays },
      { auth: 2, replay: 1 },
      'node counters (tandem_refused_total)',
    );
    const q = leg.quality();
    assert.equal(q.srtp, SUITE);
    assert.equal(q.srtp_auth_failures, 2);
    assert.doesNotMatch(
      JSON.stringify(q),
      new RegExp(`${legKey}|${phoneKey}`.replace(/\+/g, '\\+')),
      'no key in the admin view',
    );

    // What the leg sends: SRTP the phone opens with the leg's key; the clear payload is not on the wire.
    const payload = Buffer.alloc(160, 0x77);
    for (let i = 0; i < 3; i++) leg.send(0, payload, 0, 160, 160);
    await eventually(() => fromLeg.length === 3, 1000, 'packets from the leg');
    const phoneRx = context(legKey);
    for (const m of fromLeg) {
      assert.equal(m.length, 12 + 160 + 10, 'header, payload and an 80-bit tag');
      assert.ok(!m.subarray(12, 172).equals(payload), 'encrypted on the wire');
      assert.ok(phoneRx.unprotect(m).subarray(12).equals(payload));
    }
    leg.report('tandem');
    await eventually(() => rtcpFromLeg.length === 1, 1000, 'an RTCP report');
    const rtcp = phoneRx.unprotectRtcp(rtcpFromLeg[0]!);
    assert.equal(rtcp[1], 200, 'an SRTCP sender report');
    leg.close();
    far.close();
    farRtcp.close();
    assert.equal(pool.inUse, 0);
  });
});
