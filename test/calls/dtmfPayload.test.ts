// RFC 4733 DTMF with the payload type a phone chose (96 here, as linphone
// does), not the 101 Tandem offers: the answer keeps the phone's number, the
// MTP reads and writes events with it, and a SIP INFO phone on the other
// side gets (and gives) the digits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually } from '../helpers/cluster.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';
import { sdpMedia as media } from '../helpers/sipAgent.ts';

describe('DTMF with the phone’s own telephone-event payload type', () => {
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2'],
    firstRtpPort: 48700,
    span: 100,
    config: () => {
      return `
media_resources:
  MTP1: { type: mtp, node: cm1, capacity: 4, dtmf: [rfc4733, sip_info] }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: a, device_pool: DP, codecs: [PCMU] }
  "2004": { node: cm2, password: b, device_pool: DP, codecs: [PCMU], dtmf: [sip_info] }
`;
    },
  });

  it('a phone sending telephone-event as 96 reaches a SIP INFO phone through an MTP, and hears its digits as 96', async () => {
    const a = await fx.phone('1001', 'a', 'cm1');
    const b = await fx.phone('2004', 'b', 'cm2');
    a.eventPt = 96;
    b.eventPt = undefined; // SIP INFO only
    const call = await a.invite('2004');
    assert.equal(call.final.status, 200);
    const half = fx.cluster.node('cm1').sip!.calls.calls()[0]!;
    assert.equal(half.resources.find((r) => r.type === 'mtp')?.resource, 'MTP1');
    // The answer keeps the offer's number for telephone-event (RFC 3264 6.1).
    const answer = media(call.final.body);
    assert.match(answer.text, /a=rtpmap:96 telephone-event\/8000/);
    assert.doesNotMatch(answer.text, /a=rtpmap:101 /);
    // RFC 4733 with PT 96 from A -> SIP INFO to B.
    await a.sendDigit(answer, '5');
    await eventually(
      () => b.received.some((r) => r.method === 'INFO' && /Signal=5/.test(r.body.toString())),
      3000,
      'INFO with Signal=5 at B',
    );
    // SIP INFO from B -> RFC 4733 to A, with A's number.
    const ok = await b.requestInAnsweredCall('INFO', {
      type: 'application/dtmf-relay',
      data: 'Signal=7\r\nDuration=200\r\n',
    });
    assert.equal(ok.status, 200);
    await eventually(
      () => a.rtp.some((p) => p.pt === 96 && p.payload[0] === 7),
      3000,
      'telephone-event 7 with PT 96 at A',
    );
    assert.ok(!a.rtp.some((p) => p.pt === 101), 'nothing sent to A as 101');
    assert.equal((await a.bye(call)).status, 200);
  });
});
