// An RTP leg over real sockets: symmetric RTP latching, and a far end that
// goes away (ICMP port unreachable on the connected socket) must not close
// or crash the leg.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { PortPool } from '../../src/media/portPool.ts';
import { RtpLeg } from '../../src/media/rtpLeg.ts';
import { writeRtpHeader } from '../../src/media/rtp.ts';
import { eventually } from '../helpers/cluster.ts';

const packet = (seq: number) => {
  const b = Buffer.alloc(172);
  writeRtpHeader(b, 0, seq, seq * 160, 42);
  return b;
};

describe('RTP leg', () => {
  it('latches to the first source, ignores others, survives the far end going away', async () => {
    const pool = new PortPool('127.0.0.1', 47000, 47099);
    const bound = await pool.bind();
    const leg = new RtpLeg(bound, '127.0.0.1', 'PCMU');
    const got: number[] = [];
    leg.onPacket = (_l, _p, rtp) => got.push(rtp.sequence);
    const far = createSocket('udp4');
    const stranger = createSocket('udp4');
    await Promise.all([far, stranger].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
    far.send(packet(1), bound.port, '127.0.0.1');
    await eventually(() => got.length === 1, 1000, 'first packet');
    stranger.send(packet(99), bound.port, '127.0.0.1');
    far.send(packet(2), bound.port, '127.0.0.1');
    await eventually(() => got.length === 2, 1000, 'second packet from the latched source');
    assert.deepEqual(got, [1, 2], 'the stranger was ignored');
    // The far end goes away; sending to it draws ICMP errors on the connected socket.
    far.close();
    for (let i = 0; i < 20; i++) {
      leg.send(0, packet(i), 12, 160, 160);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.doesNotThrow(() => bound.socket.address(), 'the RTP socket is still open');
    assert.ok(leg.stats.sent >= 20);
    leg.close();
    stranger.close();
    assert.equal(pool.inUse, 0);
  });
});
