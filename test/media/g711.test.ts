// G.711 against its known code points and its quantisation bound.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALAW_DECODE, ALAW_TO_ULAW, ULAW_DECODE, ULAW_TO_ALAW, decodeG711, encodeG711 } from '../../src/media/g711.ts';
import { newRtpView, readRtp, writeRtpHeader } from '../../src/media/rtp.ts';

describe('G.711', () => {
  it('has the standard code points for silence and full scale', () => {
    const enc = new Uint8Array(3);
    encodeG711('PCMU', Int16Array.from([0, 32767, -32768]), enc);
    assert.deepEqual([...enc], [0xff, 0x80, 0x00]);
    encodeG711('PCMA', Int16Array.from([0, 32767, -32768]), enc);
    assert.deepEqual([...enc], [0xd5, 0xaa, 0x2a]);
    assert.equal(ULAW_DECODE[0xff], 0);
    assert.equal(ALAW_DECODE[0xd5], 8);
  });

  it('round-trips every sample within the step of its segment (about 3 % of the value)', () => {
    for (const codec of ['PCMU', 'PCMA'] as const) {
      const pcm = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);
      const bytes = new Uint8Array(pcm.length);
      const back = new Int16Array(pcm.length);
      encodeG711(codec, pcm, bytes);
      decodeG711(codec, bytes, back);
      for (let i = 0; i < pcm.length; i++) {
        const err = Math.abs(back[i]! - pcm[i]!);
        assert.ok(err <= Math.max(16, Math.abs(pcm[i]!) / 16), `${codec} ${pcm[i]} -> ${back[i]}`);
      }
    }
  });

  it('converts µ-law to A-law and back without drifting', () => {
    for (let u = 0; u < 256; u++) {
      const a = ULAW_TO_ALAW[u]!;
      assert.ok(Math.abs(ALAW_DECODE[a]! - ULAW_DECODE[u]!) <= Math.max(16, Math.abs(ULAW_DECODE[u]!) / 16));
      assert.equal(ULAW_TO_ALAW[ALAW_TO_ULAW[a]!], a);
    }
  });
});

describe('RTP header', () => {
  it('writes and reads back, and refuses what is not RTP v2', () => {
    const buf = new Uint8Array(172);
    writeRtpHeader(buf, 8, 65535, 0xfffffff0, 0xdeadbeef, true);
    const v = newRtpView();
    assert.ok(readRtp(buf, 172, v));
    assert.deepEqual(v, {
      marker: true,
      payloadType: 8,
      sequence: 65535,
      timestamp: 0xfffffff0,
      ssrc: 0xdeadbeef,
      payloadOffset: 12,
      payloadLength: 160,
    });
    assert.equal(readRtp(buf, 11, v), false);
    buf[0] = 0x40;
    assert.equal(readRtp(buf, 172, v), false);
    buf[0] = 0x80;
    buf[1] = 200; // RTCP SR
    assert.equal(readRtp(buf, 172, v), false);
  });
});
