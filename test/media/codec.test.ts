// Codecs of the transcoder and bad RTP: Opus round trip keeps a tone; no
// garbage packet can throw in the parsers the media path runs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FRAME_8K, createCodec } from '../../src/media/codec.ts';
import { DtmfDetector } from '../../src/media/dtmf.ts';
import { newRtpView, readRtp } from '../../src/media/rtp.ts';
import { toneShare } from '../helpers/audio.ts';

describe('codecs', () => {
  for (const name of ['PCMU', 'PCMA', 'G722', 'L16', 'OPUS'] as const) {
    it(`${name}: a 440 Hz tone survives encoding and decoding`, () => {
      const enc = createCodec(name)!;
      const dec = createCodec(name)!;
      const frame = new Int16Array(FRAME_8K);
      const out = new Int16Array(FRAME_8K * 6);
      const bytes = Buffer.alloc(1500);
      const heard: number[] = [];
      for (let f = 0; f < 50; f++) {
        for (let i = 0; i < FRAME_8K; i++)
          frame[i] = Math.round(10000 * Math.sin((2 * Math.PI * 440 * (f * FRAME_8K + i)) / 8000));
        const n = enc.encode(frame, bytes);
        assert.ok(n > 0 && n <= 1500);
        const m = dec.decode(bytes, 0, n, out);
        assert.equal(m, FRAME_8K);
        if (f >= 10) heard.push(...out.subarray(0, m));
      }
      assert.ok(toneShare(Int16Array.from(heard), 8000, 440) > 0.8);
      enc.close();
      dec.close();
    });
  }

  it('never throws on garbage: RTP header reader, DTMF detector, Opus decoder', () => {
    const view = newRtpView();
    const det = new DtmfDetector();
    const opus = createCodec('OPUS')!;
    const out = new Int16Array(FRAME_8K * 6);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const b = Buffer.from(bytes);
        if (readRtp(b, b.length, view)) {
          assert.ok(view.payloadOffset + view.payloadLength <= b.length);
          det.packet(b, view.payloadOffset, view.payloadLength, view.timestamp);
          opus.decode(b, view.payloadOffset, view.payloadLength, out);
        }
      }),
      { numRuns: 3000 },
    );
    opus.close();
  });
});
