// An RTP leg over real sockets: symmetric RTP latching, and a far end that
// goes away (ICMP port unreachable on the connected socket) must not close
// or crash the leg.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { PortPool } from '../../src/media/portPool.ts';
import { RtpLeg, newLegCounters } from '../../src/media/rtpLeg.ts';
import { writeRtpHeader } from '../../src/media/rtp.ts';
import { eventually } from '../helpers/cluster.ts';

const packet = (seq: number) => {
  const b = Buffer.alloc(172);
  writeRtpHeader(b, 0, seq, seq * 160, 42);
  return b;
};

describe('RTP leg', () => {
  it('first_source (NAT): latches to the first source, ignores others, survives the far end going away', async () => {
    const pool = new PortPool('127.0.0.1', 47000, 47099);
    const bound = await pool.bind();
    const leg = new RtpLeg(bound, '127.0.0.1', 'PCMU', 'first_source');
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

  it('sdp (default): a stranger speaking first gets nothing and is counted; only the SDP address latches; a new SDP address re-latches', async () => {
    const pool = new PortPool('127.0.0.1', 47100, 47199);
    const bound = await pool.bind();
    const counters = newLegCounters();
    const leg = new RtpLeg(bound, '127.0.0.1', 'PCMU', 'sdp', counters);
    const got: number[] = [];
    leg.onPacket = (_l, _p, rtp) => got.push(rtp.sequence);
    const [far, stranger, moved] = [createSocket('udp4'), createSocket('udp4'), createSocket('udp4')];
    await Promise.all([far, stranger, moved].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
    const heard = { far: 0, stranger: 0 };
    far.on('message', () => heard.far++);
    stranger.on('message', () => heard.stranger++);
    leg.setRemote({ address: '127.0.0.1', port: far.address().port });
    stranger.send(packet(99), bound.port, '127.0.0.1');
    await eventually(() => leg.stats.strangers === 1, 1000, 'the stranger counted');
    far.send(packet(1), bound.port, '127.0.0.1');
    await eventually(() => got.length === 1, 1000, 'the SDP address latched');
    for (let i = 0; i < 10; i++) leg.send(0, packet(i), 12, 160, 160);
    await eventually(() => heard.far === 10, 1000, 'the far end to hear the leg');
    assert.equal(heard.stranger, 0);
    assert.deepEqual(got, [1]);
    assert.equal(counters.strangers, 1);
    // A re-INVITE moves the far end: the old source is now a stranger.
    leg.setRemote({ address: '127.0.0.1', port: moved.address().port });
    far.send(packet(2), bound.port, '127.0.0.1');
    moved.send(packet(3), bound.port, '127.0.0.1');
    await eventually(() => got.length === 2, 1000, 'the new address latched');
    assert.deepEqual(got, [1, 3]);
    leg.close();
    for (const s of [far, stranger, moved]) s.close();
  });

  it('hands out ports at random, RTP even and RTCP odd', async () => {
    const pool = new PortPool('127.0.0.1', 47200, 47999);
    const bound = await Promise.all(Array.from({ length: 16 }, () => pool.bind()));
    const ports = bound.map((b) => b.port);
    assert.ok(ports.every((p) => p % 2 === 0));
    const sequential = ports.slice(1).filter((p, i) => p === ports[i]! + 2).length;
    assert.ok(sequential < 4, `ports ${ports.join(',')}`);
    assert.equal(new Set(ports).size, 16);
    for (const b of bound) b.release();
  });
});
