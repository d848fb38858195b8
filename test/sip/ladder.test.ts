// The SIP ladder's bounds: a flood of attempts (new Call-IDs, never bound to
// a call) does not evict a call's ladder, strangers' messages are not kept at
// all, and whatever comes the ladder stays within its byte budget, the
// oldest dropped first.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SipLadder } from '../../src/sip/ladder.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { parseSip } from '../../src/sip/parser.ts';
import type { SipPeer } from '../../src/sip/transport.ts';

const peer: SipPeer = { transport: 'UDP', address: '127.0.0.1', port: 5062 };

function invite(callId: string, padding = 0): { msg: SipMessage; wire: Buffer } {
  const body = 'x'.repeat(padding);
  const wire = Buffer.from(
    `INVITE sip:2001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK${callId}\r\nFrom: <sip:1001@x>;tag=1\r\nTo: <sip:2001@x>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  const r = parseSip(wire);
  assert.ok(r.ok);
  return { msg: r.message, wire };
}

describe('the SIP ladder stays bounded', () => {
  it("a call's messages survive 20,000 attempts; an attempt keeps a few messages; strangers' messages are not kept", () => {
    const ladder = new SipLadder();
    const mine = invite('mine');
    ladder.record('in', mine.msg, peer, mine.wire, true);
    ladder.bind('call-1', 'mine');
    // (from known addresses: a stranger's never open a Call-ID at all, below)
    for (let i = 0; i < 20_000; i++) {
      const x = invite(`attempt-${i}`);
      ladder.record('in', x.msg, peer, x.wire, true);
    }
    const size = ladder.size;
    for (let i = 0; i < 1000; i++) {
      const x = invite(`stranger-${i}`);
      ladder.record('in', x.msg, peer, x.wire, false);
      ladder.record('out', x.msg, peer, x.wire, false);
    }
    assert.equal(ladder.size, size, "strangers' messages are not kept");
    ladder.bind('call-3', 'stranger-1');
    assert.deepEqual(ladder.of('call-3'), []);
    // one attempt sending its INVITE many times: kept to a few
    const again = invite('again');
    for (let i = 0; i < 50; i++) ladder.record('in', again.msg, peer, again.wire, true);
    ladder.bind('call-2', 'again');
    assert.equal(ladder.of('call-1').length, 1);
    assert.equal(ladder.of('call-2').length, 8);
    assert.ok(ladder.size < 300 * 8 * 1000, `${ladder.size} bytes kept`);
  });

  it('calls beyond the budget: the oldest go, the newest stay, the size stays under 16 MiB', () => {
    const ladder = new SipLadder();
    for (let c = 0; c < 400; c++) {
      ladder.bind(`call-${c}`, `id-${c}`);
      const m = invite(`id-${c}`, 5500);
      for (let i = 0; i < 100; i++) ladder.record('out', m.msg, peer, m.wire, true);
    }
    assert.ok(ladder.size <= 16 * 2 ** 20, `${ladder.size} bytes kept`);
    assert.equal(ladder.of('call-0').length, 0, 'the oldest call dropped');
    assert.equal(ladder.of('call-399').length, 100, 'the newest kept whole');
  });
});
