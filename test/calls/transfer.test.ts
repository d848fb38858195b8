// Blind transfer across three nodes: A (cm1) in a call with B (cm2) refers
// B to C (cm3). A gets 202, NOTIFYs (100, then 200) and a BYE; B hears
// A's network hold music (not its user hold music) while C rings, then is
// moved to C; B and C hear each other; no half of the old call is left and
// B's line follows it into the new call.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { toneShare, writeToneWav } from '../helpers/audio.ts';
import { eventually } from '../helpers/cluster.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';
import { sdpMedia as media } from '../helpers/sipAgent.ts';

describe('blind transfer (REFER)', () => {
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2', 'cm3'],
    firstRtpPort: 49800,
    span: 60,
    config: () => {
      const dir = mkdtempSync(join(tmpdir(), 'tandem-xfer-'));
      const [userHold, networkHold] = [join(dir, 'user.wav'), join(dir, 'network.wav')];
      writeToneWav(userHold, 600, 10);
      writeToneWav(networkHold, 900, 10);
      return `
media_dir: "${dir}"
media_resources:
  MOH2: { type: moh, node: cm2, capacity: 4, audio_sources: { "1": "${userHold}", "2": "${networkHold}" } }
device_pools:
  DP: { moh_audio_source: 1, network_hold_audio_source: 2 }
phones:
  "1001": { node: cm1, password: a, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: b, device_pool: DP, codecs: [PCMU] }
  "3001": { node: cm3, password: c, device_pool: DP, codecs: [PCMU] }
  "3002": { node: cm3, password: d, device_pool: DP, codecs: [PCMU] }
  "1002": { node: cm1, password: e, device_pool: DP, codecs: [PCMU] }
  "2002": { node: cm2, password: f, device_pool: DP, codecs: [PCMU] }
  "3003": { node: cm3, password: g, device_pool: DP, codecs: [PCMU] }
`;
    },
  });

  it('A refers B to C: B hears music on hold while C rings, then B and C talk; A is released', async () => {
    const [a, b, c] = await Promise.all([
      fx.phone('1001', 'a', 'cm1'),
      fx.phone('2001', 'b', 'cm2'),
      fx.phone('3001', 'c', 'cm3'),
    ]);
    const call = await a.invite('2001');
    assert.equal(call.final.status, 200);
    c.autoAnswer = false; // C rings a while: B must hear music meanwhile
    const referred = await a.refer(call, '3001');
    assert.equal(referred.status, 202);
    // B is put on network hold: it hears A's network hold source (900 Hz), not the user hold one (600 Hz).
    await eventually(
      () => toneShare(b.heardSince(Date.now() - 600), 8000, 900) > 0.5,
      5000,
      'B to hear network hold music',
    );
    assert.ok(toneShare(b.heardSince(Date.now() - 600), 8000, 600) < 0.1, 'not the user hold source');
    // C is called (by B's number) and answers.
    await eventually(() => c.received.some((r) => r.method === 'INVITE'), 5000, 'C to be called');
    const invite = c.received.find((r) => r.method === 'INVITE')!;
    assert.match(invite.headers.get('from') ?? '', /sip:2001@/);
    const [host, port] = fx.sip.cm3!.split(':') as [string, string];
    // While C rings, A has heard no final answer (RFC 3515: the final NOTIFY is the referenced INVITE's final answer).
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(
      !a.received.some(
        (r) =>
          r.method === 'NOTIFY' && /subscription-state:\s*terminated/i.test(r.headers.get('subscription-state') ?? ''),
      ),
      'no final NOTIFY while C rings',
    );
    assert.ok(!a.received.some((r) => r.method === 'BYE'), 'A keeps its call while C rings');
    c.answer(invite, { address: host, port: Number(port) });
    // B is moved to C's media (its last re-INVITE), A is told and released.
    await eventually(
      () => a.received.some((r) => r.method === 'NOTIFY' && /SIP\/2\.0 200/.test(r.body.toString())),
      5000,
      'A to get NOTIFY 200',
    );
    assert.ok(
      a.received.some((r) => r.method === 'NOTIFY' && /SIP\/2\.0 100/.test(r.body.toString())),
      'A got NOTIFY 100 first',
    );
    await eventually(() => a.received.some((r) => r.method === 'BYE'), 5000, 'A to get a BYE');
    await eventually(() => fx.cluster.node('cm2').sip!.calls.calls()[0]?.held === false, 5000, 'B off hold');
    const toC = media(b.received.filter((r) => r.method === 'INVITE').at(-1)!.body);
    const toB = media(invite.body);
    const t0 = Date.now();
    await Promise.all([b.streamRtp(toC, 0, 50), c.streamRtp(toB, 0, 50)]);
    await eventually(
      () => c.rtp.filter((p) => p.at >= t0).length >= 48 && b.rtp.filter((p) => p.at >= t0 && p.pt === 0).length >= 48,
      2000,
      'B and C to hear each other',
    );
    assert.ok(c.rtp.filter((p) => p.at >= t0).length >= 48, 'C hears B');
    assert.ok(b.rtp.filter((p) => p.at >= t0 && p.pt === 0).length >= 48, 'B hears C');
    // The calls: nothing left on cm1; B's half on cm2 now faces C on cm3.
    assert.equal(fx.cluster.node('cm1').sip!.calls.calls().length, 0);
    const hb = fx.cluster.node('cm2').sip!.calls.calls()[0]!;
    assert.deepEqual([hb.phone, hb.far, hb.peer_node, hb.state], ['2001', '3001', 'cm3', 'up']);
    // B's line follows its half into the new call (not left taken by the old one).
    assert.deepEqual(fx.cluster.node('cm2').phones.get('2001')!.snapshot().calls, [`${hb.call}/caller`]);
    assert.equal(fx.cluster.node('cm2').localResources()[0]!.active, 0, 'the music on hold released');
  });

  const notifies = (p: {
    received: Array<{ method: string; body: Buffer; headers: { get(n: string): string | undefined } }>;
  }) =>
    p.received
      .filter((r) => r.method === 'NOTIFY')
      .map((r) => ({
        frag: r.body.toString().trim(),
        final: /terminated/.test(r.headers.get('subscription-state') ?? ''),
      }));

  it('a transfer to a phone that is not registered is refused before anything moves: A hears 480 and the call with B goes on', async () => {
    const [a, b] = await Promise.all([fx.phone('1002', 'e', 'cm1'), fx.phone('2002', 'f', 'cm2')]);
    const call = await a.invite('2002');
    assert.equal(call.final.status, 200);
    const referred = await a.refer(call, '3002');
    assert.equal(referred.status, 202);
    await eventually(() => notifies(a).some((n) => n.final), 5000, 'the final NOTIFY');
    assert.deepEqual(notifies(a).at(-1), {
      frag: 'SIP/2.0 480 Temporarily Unavailable (3002 is not registered)',
      final: true,
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(
      !a.received.some((r) => r.method === 'BYE') && !b.received.some((r) => r.method === 'BYE'),
      'nobody was hung up',
    );
    const mine = (n: string) =>
      fx.cluster
        .node(n)
        .sip!.calls.calls()
        .filter((x) => x.phone === '1002' || x.phone === '2002');
    const [ha, hb] = [mine('cm1'), mine('cm2')];
    assert.deepEqual([ha.length, hb.length], [1, 1]);
    assert.equal(ha[0]!.call, hb[0]!.call, 'the same call on both nodes');
    assert.deepEqual([ha[0]!.state, hb[0]!.state, hb[0]!.far], ['up', 'up', '1002']);
    // Media still flows both ways, and A hangs up as usual.
    const toB = media(call.final.body);
    const toA = media(b.received.filter((r) => r.method === 'INVITE').at(-1)!.body);
    const t0 = Date.now();
    await Promise.all([a.streamRtp(toB, 0, 30), b.streamRtp(toA, 0, 30)]);
    await eventually(
      () => b.rtp.filter((p) => p.at >= t0).length >= 28 && a.rtp.filter((p) => p.at >= t0).length >= 28,
      2000,
      'A and B to hear each other',
    );
    assert.ok(b.rtp.filter((p) => p.at >= t0).length >= 28, 'B hears A');
    assert.ok(a.rtp.filter((p) => p.at >= t0).length >= 28, 'A hears B');
    assert.equal((await a.bye(call)).status, 200);
    await eventually(() => b.received.some((r) => r.method === 'BYE'), 5000, 'B to get the BYE');
    await eventually(() => mine('cm2').length === 0 && mine('cm1').length === 0, 5000, 'no half left');
  });

  it('a target that refuses (486) ends both: A gets the final NOTIFY 486 and a BYE, B a BYE; nothing is left', async () => {
    const [a, b, c] = await Promise.all([
      fx.phone('1002', 'e', 'cm1'),
      fx.phone('2002', 'f', 'cm2'),
      fx.phone('3003', 'g', 'cm3'),
    ]);
    const call = await a.invite('2002');
    assert.equal(call.final.status, 200);
    c.autoAnswer = false;
    const seen = c.received.length;
    assert.equal((await a.refer(call, '3003')).status, 202);
    await eventually(() => c.received.slice(seen).some((r) => r.method === 'INVITE'), 5000, 'C to be called');
    const invite = c.received.slice(seen).find((r) => r.method === 'INVITE')!;
    const [host, port] = fx.sip.cm3!.split(':') as [string, string];
    c.reject(invite, { address: host, port: Number(port) }, 486, 'Busy Here');
    await eventually(() => notifies(a).some((n) => n.final), 5000, 'the final NOTIFY');
    assert.match(notifies(a).at(-1)!.frag, /^SIP\/2\.0 486/);
    await eventually(() => a.received.some((r) => r.method === 'BYE'), 5000, 'A to get a BYE');
    await eventually(() => b.received.filter((r) => r.method === 'BYE').length >= 1, 5000, 'B to get a BYE');
    const mine = (n: string) =>
      fx.cluster
        .node(n)
        .sip!.calls.calls()
        .filter((x) => ['1002', '2002', '3003'].includes(x.phone));
    for (const n of ['cm1', 'cm2', 'cm3']) await eventually(() => mine(n).length === 0, 5000, `no half left on ${n}`);
    assert.equal(fx.cluster.node('cm2').localResources()[0]!.active, 0, 'the music on hold released');
  });
});
