// A callee that answers with a codec the caller did not offer (it should
// not; some phones do): a transcoder goes between them before the caller is
// answered, the far end is re-offered the transcoder, and each side gets
// its own codec.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually } from '../helpers/cluster.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';
import { sdpMedia as media } from '../helpers/sipAgent.ts';

describe('a callee answering a codec that was not offered', () => {
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2'],
    firstRtpPort: 49700,
    span: 100,
    config: () => {
      return `
media_resources:
  XC2: { type: transcoder, node: cm2, capacity: 2, codecs: [PCMU, PCMA, G722] }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: a, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: b, device_pool: DP }
  "2003": { node: cm2, password: c, device_pool: DP }
  "2004": { node: cm2, password: d, device_pool: DP }
`;
    },
  });

  it('puts a transcoder in, re-offers it to the callee, and both hear the other in their own codec', async () => {
    const a = await fx.phone('1001', 'a', 'cm1');
    const b = await fx.phone('2001', 'b', 'cm2');
    b.codecs = [8]; // answers PCMA whatever it is offered
    const call = await a.invite('2001');
    assert.equal(call.final.status, 200);
    const toA = media(call.final.body);
    assert.match(toA.text, /m=audio \d+ RTP\/AVP 0 /, 'the caller is answered in PCMU');
    const half = fx.cluster.node('cm1').sip!.calls.calls()[0]!;
    const xc = half.resources.find((r) => r.type === 'transcoder');
    assert.match(xc?.why ?? '', /2001 answered PCMA, not offered by 1001/);
    // B is re-INVITEd to the transcoder (its second INVITE), in PCMA.
    await eventually(
      () => b.received.filter((r) => r.method === 'INVITE').length >= 2,
      3000,
      'the re-offer to the callee',
    );
    const toB = media(b.received.filter((r) => r.method === 'INVITE').at(-1)!.body);
    assert.match(toB.text, /m=audio \d+ RTP\/AVP 8 /);
    const t0 = Date.now();
    await Promise.all([a.streamRtp(toA, 0, 50), b.streamRtp(toB, 8, 50)]);
    await eventually(
      () =>
        b.rtp.filter((p) => p.at >= t0 && p.pt === 8).length >= 48 &&
        a.rtp.filter((p) => p.at >= t0 && p.pt === 0).length >= 48,
      2000,
      'both ends to get their stream',
    );
    assert.ok(b.rtp.filter((p) => p.at >= t0 && p.pt === 8).length >= 48, 'B got PCMA');
    assert.ok(a.rtp.filter((p) => p.at >= t0 && p.pt === 0).length >= 48, 'A got PCMU');
    assert.equal((await a.bye(call)).status, 200);
    await eventually(() => fx.cluster.node('cm2').localResources()[0]!.active === 0, 3000, 'XC2 released');
  });

  const learnt = async (number: string) => {
    const found = fx.cluster.node('cm1').devices.lookup(number);
    return found.registered ? found.entry.codecs : undefined;
  };
  const endAll = async (a: { bye(c: unknown): Promise<unknown> }, call: unknown) => {
    await a.bye(call);
    for (const n of ['cm1', 'cm2'])
      await eventually(() => fx.cluster.node(n).sip!.calls.calls().length === 0, 5000, `calls ended on ${n}`);
  };

  it('codecs learnt of a phone give way when it refuses them: a 488 to the learnt codecs leads to one more offer, in the caller’s own', async () => {
    const a = await fx.phone('1001', 'a', 'cm1');
    const c = await fx.phone('2003', 'c', 'cm2');
    // 2003 offers G.722 only once: the cluster learns it takes G.722.
    c.codecs = [9];
    const out = await c.invite('1001');
    assert.equal(out.final.status, 200);
    await eventually(async () => (await learnt('2003'))?.join() === 'G722', 3000, 'G722 learnt of 2003');
    await endAll(c, out);
    // Its settings change: PCMU only now, and it refuses anything else.
    c.codecs = [0];
    c.strictCodecs = true;
    const call = await a.invite('2003');
    assert.equal(call.final.status, 200, 'answered after one more offer');
    const halves = fx.cluster.node('cm1').sip!.calls.calls();
    assert.equal(
      halves[0]!.resources.filter((r) => r.type === 'transcoder').length,
      0,
      'no transcoder left in the call',
    );
    const invites = c.received.filter((r) => r.method === 'INVITE');
    assert.match(invites.at(-1)!.body.toString(), /m=audio \d+ RTP\/AVP 0 /, 'the second offer is the caller’s PCMU');
    await eventually(async () => (await learnt('2003'))?.join() !== 'G722', 3000, 'the refused codecs forgotten');
    await endAll(a, call);
  });

  it('codecs learnt of one device are forgotten when another registers as the number', async () => {
    const a = await fx.phone('1001', 'a', 'cm1');
    const old = await fx.phone('2004', 'd', 'cm2');
    old.codecs = [9];
    const out = await old.invite('1001');
    assert.equal(out.final.status, 200);
    await eventually(async () => (await learnt('2004'))?.join() === 'G722', 3000, 'G722 learnt of 2004');
    await endAll(old, out);
    // Another device registers as 2004 (another contact): the learnt codecs go.
    const now = await fx.phone('2004', 'd', 'cm2');
    now.strictCodecs = true;
    await eventually(
      async () => (await learnt('2004')) === undefined,
      3000,
      'the codecs of the old device forgotten cluster-wide',
    );
    const call = await a.invite('2004');
    assert.equal(call.final.status, 200);
    assert.equal(
      fx.cluster
        .node('cm1')
        .sip!.calls.calls()[0]!
        .resources.filter((r) => r.type === 'transcoder').length,
      0,
      'straight PCMU, no transcoder',
    );
    assert.equal(now.received.filter((r) => r.method === 'INVITE').length, 1, 'one offer was enough');
    await endAll(a, call);
  });
});
