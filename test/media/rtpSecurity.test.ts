// Strangers against a running call's media: one who speaks first to a
// transcoder leg, and one who sprays the node's whole RTP port range while
// the call runs. The phones keep their audio; the strangers hear nothing.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { eventually } from '../helpers/cluster.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';
import { sdpMedia as sdpAddress } from '../helpers/sipAgent.ts';

describe('RTP strangers during a call', () => {
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2', 'cm3'],
    firstRtpPort: 48000,
    span: 200,
    config: () => {
      return `
media_resources:
  XC3: { type: transcoder, node: cm3, capacity: 4, codecs: [PCMU, PCMA] }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: a, device_pool: DP, codecs: [PCMU] }
  "2002": { node: cm2, password: b, device_pool: DP, codecs: [PCMA] }
`;
    },
  });

  it('a stranger speaking first and a spray over the port range get nothing; the phones keep at least 99% of their packets', async () => {
    const a = await fx.phone('1001', 'a', 'cm1');
    const b = await fx.phone('2002', 'b', 'cm2');
    b.codecs = [8];
    const call = await a.invite('2002');
    assert.equal(call.final.status, 200);
    const toA = sdpAddress(call.final.body); // where A sends: the transcoder's leg towards A
    const invite = b.received.find((r) => r.method === 'INVITE')!;
    const toB = sdpAddress(invite.body); // where B sends
    assert.ok(toA.port >= 48400 && toA.port <= 48599, `A's media goes through cm3's transcoder (${toA.port})`);

    const stranger = createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.2', () => r()));
    let strangerHeard = 0;
    stranger.on('message', () => strangerHeard++);
    const pkt = Buffer.alloc(172, 0x11);
    pkt[0] = 0x80;
    // Speaks first to both legs, then sprays the whole range of cm3 (and cm1, cm2) every 100 ms while the call runs.
    stranger.send(pkt, toA.port, '127.0.0.1');
    stranger.send(pkt, toB.port, '127.0.0.1');
    let spraying = true;
    const spray = (async () => {
      while (spraying) {
        for (let port = 48000; port < 48600; port++) stranger.send(pkt, port, '127.0.0.1');
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const t0 = Date.now();
    await Promise.all([a.streamRtp(toA, 0, 200), b.streamRtp(toB, 8, 200)]);
    await new Promise((r) => setTimeout(r, 300));
    spraying = false;
    await spray;
    const heardByB = b.rtp.filter((p) => p.at >= t0 && p.pt === 8).length;
    const heardByA = a.rtp.filter((p) => p.at >= t0 && p.pt === 0).length;
    assert.ok(heardByB >= 198, `B got ${heardByB} of A's 200 packets`);
    assert.ok(heardByA >= 198, `A got ${heardByA} of B's 200 packets`);
    assert.equal(strangerHeard, 0, 'the stranger heard nothing');
    const strangers = fx.cluster
      .node('cm3')
      .refusals()
      .find((r) => r.edge === 'rtp')!.count;
    assert.ok(strangers >= 20, `${strangers} stranger packets counted on cm3`);
    stranger.close();
    assert.equal((await a.bye(call)).status, 200);
    await eventually(() => fx.cluster.node('cm3').localResources()[0]!.active === 0, 3000, 'XC3 released');
  });
});
