// RTCP receiver statistics and reports, by the numbers of RFC 3550.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReceiverStats, buildReport, readReportBlocks } from '../../src/media/rtcp.ts';

describe('RTCP', () => {
  it('counts loss across a sequence wrap and measures jitter; the report block says so', () => {
    const st = new ReceiverStats(8000);
    // 20 ms packets, seq 65530..65541 (wrapping), two lost, perfectly paced.
    let t = 1000;
    for (let i = 0; i < 12; i++) {
      const seq = (65530 + i) & 0xffff;
      if (i !== 3 && i !== 7) st.packet(seq, 160 * i, 0xabc, t);
      t += 20;
    }
    assert.equal(st.expected, 12);
    assert.equal(st.lost, 2);
    assert.ok(st.jitterMs < 0.5, `paced stream, jitter ${st.jitterMs}`);
    const pkt = buildReport(0x1234, 'tandem-test', { rtpTimestamp: 999, packets: 10, octets: 1600 }, st);
    assert.equal(pkt[1], 200, 'SR when we send');
    const blocks = readReportBlocks(pkt);
    assert.equal(blocks.length, 1);
    assert.equal(blocks[0]!.ssrc, 0xabc);
    assert.equal(blocks[0]!.cumulativeLost, 2);
    assert.ok(Math.abs(blocks[0]!.fractionLost - 2 / 12) < 0.01);
    assert.equal(buildReport(1, 'x', undefined, undefined)[1], 201, 'RR when we only receive');
  });

  it('a report with heavy loss (fraction lost >= 50 %) is written, not thrown', () => {
    const st = new ReceiverStats(8000);
    for (let i = 0; i < 100; i += 4) st.packet(i, 160 * i, 7, i * 20);
    const blocks = readReportBlocks(buildReport(1, 'x', undefined, st));
    assert.ok(blocks[0]!.fractionLost > 0.7, String(blocks[0]!.fractionLost));
  });

  it('jitter grows with uneven arrival', () => {
    const st = new ReceiverStats(8000);
    for (let i = 0; i < 200; i++) st.packet(i, 160 * i, 1, i * 20 + (i % 2 ? 15 : 0));
    assert.ok(st.jitterMs > 5, `jitter ${st.jitterMs}`);
  });

  it('reads nothing from garbage', () => {
    assert.deepEqual(readReportBlocks(Buffer.from([0x81, 201, 0xff, 0xff, 1, 2, 3])), []);
    assert.deepEqual(readReportBlocks(Buffer.alloc(0)), []);
  });
});
