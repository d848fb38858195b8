// Network faults on the bus, made with a network namespace of the test's own:
// the nats-server sits behind one veth link per node, SIP and RTP stay on the
// loopback. One node's link is cut for 10 s (every packet dropped both ways:
// its socket stays open, nothing arrives) while a call crosses it: the call and
// its audio go on, the cut-off node's phones call each other through its own
// transcoder, nobody is declared down, and everything agrees afterwards.
// Then every bus link gets 200 ms of latency each way and loses 5 % of its
// packets: calls across nodes still set up and end, and no node is declared
// down. (This kernel has no netem: the latency is a relay of the test's own
// on each link, test/helpers/delayRelay.ts; the loss is iptables.)
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { adminFetch } from '../helpers/admin.ts';
import { longestGapMs, readWav, tonesIn } from '../helpers/audio.ts';
import { Baresip } from '../helpers/baresip.ts';
import { eventually } from '../helpers/cluster.ts';
import { useNatsNodes } from '../helpers/natsNodes.ts';

type Json = Record<string, unknown>;
const PARTITION_MS = 10_000;

describe('partitions and lossy links between the nodes and the bus', () => {
  const phones: Baresip[] = [];
  const cluster = useNatsNodes({
    name: 'partition',
    nodes: ['cm1', 'cm2', 'cm3'],
    rtp: true,
    netns: true,
    cluster: 'node_dead_after_ms: 30000, request_timeout_ms: 1500',
    config: `
media_resources:
  XC2: { type: transcoder, node: cm2, capacity: 4, codecs: [PCMU, PCMA] }
  XC3: { type: transcoder, node: cm3, capacity: 4, codecs: [PCMU, PCMA] }
media_resource_groups:
  G: { devices: [XC2, XC3] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: a1, device_pool: DP, codecs: [PCMU] }
  "3001": { node: cm3, password: c1, device_pool: DP, codecs: [PCMA] }
  "3002": { node: cm3, password: c2, device_pool: DP, codecs: [PCMU] }
  "3003": { node: cm3, password: c3, device_pool: DP, codecs: [PCMA] }
`,
  });
  const api = async (node: string, path: string) =>
    (await (
      await adminFetch(`http://${cluster.admin[node]}${path}`, { signal: AbortSignal.timeout(10_000) })
    ).json()) as Json[];
  const state = async (from: string, of: string) => (await api(from, '/api/nodes')).find((n) => n.name === of)?.state;
  const active = async (node: string, device: string) =>
    (await api(node, '/api/resources')).find((r) => r.name === device)?.active;
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
  });

  it('cm3 cut off from the bus for 10 s: the call through cm2 goes on with its audio, cm3 calls inside itself with its own transcoder, nobody is declared down', async () => {
    const { sip } = cluster;
    const a = await Baresip.start({ number: '1001', password: 'a1', registrar: sip.cm1!, toneHz: 440 });
    const c1 = await Baresip.start({
      number: '3001',
      password: 'c1',
      registrar: sip.cm3!,
      toneHz: 1000,
      codecs: ['pcma'],
    });
    const c2 = await Baresip.start({ number: '3002', password: 'c2', registrar: sip.cm3!, toneHz: 600 });
    const c3 = await Baresip.start({
      number: '3003',
      password: 'c3',
      registrar: sip.cm3!,
      toneHz: 1300,
      codecs: ['pcma'],
    });
    phones.push(a, c1, c2, c3);
    for (const p of phones) assert.equal((await p.registration()).status, 200);
    await eventually(
      async () =>
        ((await api('cm1', '/api/phones')) as Array<{ number: string; sip_registration: unknown }>).find(
          (p) => p.number === '3001',
        )?.sip_registration != null,
      10_000,
      'cm1 to see 3001',
    );
    const at = await a.callUntilEstablished(c1);
    assert.equal(await active('cm2', 'XC2'), 1, 'the call goes through XC2 on cm2');
    const callStart = Date.now();
    await new Promise((r) => setTimeout(r, 1500));

    cluster.network.cut('cm3');
    const cutAt = Date.now() - callStart;
    await eventually(async () => (await state('cm1', 'cm3')) === 'unreachable', 5000, 'cm1 to suspect cm3');
    await eventually(async () => (await state('cm3', 'cm1')) === 'unreachable', 5000, 'cm3 to hear no one');
    // Inside the cut-off node: 3002 (PCMU) calls 3003 (PCMA); XC2 is out of reach, so cm3's own XC3 transcodes.
    const inside = await c2.callUntilEstablished(c3);
    const calls3 = await api('cm3', '/api/calls');
    const half = calls3.find((c) => c.phone === '3002') as { resources?: Array<{ resource: string }> } | undefined;
    assert.deepEqual(
      half?.resources?.map((r) => r.resource),
      ['XC3'],
      JSON.stringify(calls3),
    );
    await new Promise((r) => setTimeout(r, Math.max(0, PARTITION_MS - (Date.now() - callStart - cutAt))));
    assert.equal(await state('cm1', 'cm3'), 'unreachable', 'suspected, not convicted');
    cluster.network.heal('cm3');
    const healAt = Date.now() - callStart;

    await eventually(
      async () =>
        (await state('cm1', 'cm3')) === 'up' &&
        (await state('cm3', 'cm1')) === 'up' &&
        (await state('cm2', 'cm3')) === 'up',
      30_000,
      'cm3 heard again everywhere',
    );
    await new Promise((r) => setTimeout(r, 2000));
    for (const n of ['cm1', 'cm2', 'cm3'])
      assert.doesNotMatch(cluster.procs.get(n)!.output(), /"msg":"node down"/, `${n} declared a node down`);
    assert.deepEqual(
      (await api('cm1', '/api/calls')).map((c) => [c.phone, c.state]),
      [['1001', 'up']],
    );
    assert.equal(await active('cm2', 'XC2'), 1, 'the lease of the cut-off node kept, not leaked, not doubled');

    // The inside call carried audio through XC3; the call across kept its audio through the cut.
    await c2.command('hangup');
    await c3.waitEvent('CALL_CLOSED', 10_000, inside.callee);
    await a.command('hangup');
    await c1.waitEvent('CALL_CLOSED', 10_000, at.callee);
    await eventually(
      async () => (await active('cm2', 'XC2')) === 0 && (await active('cm3', 'XC3')) === 0,
      10_000,
      'every unit back',
    );
    await Promise.all([a, c1, c2, c3].map((p) => p.recordingsClosed()));
    for (const [p, far] of [
      [c2, 1000 + 300],
      [c3, 600],
    ] as const) {
      const t = tonesIn(readWav(p.recordings().at(-1)!), [far]);
      assert.ok(t.share[far]! > 0.5, `${p.opts.number} heard ${JSON.stringify(t.share)} inside cm3`);
    }
    for (const [p, far] of [
      [a, 1000],
      [c1, 440],
    ] as const) {
      const pcm = readWav(p.recordings().at(-1)!);
      const gap = longestGapMs(pcm, far, 500, healAt + 2000);
      assert.ok(gap <= 200, `${p.opts.number} heard a ${gap} ms gap (cut at ${cutAt} ms, healed at ${healAt} ms)`);
    }
  });

  it("cm2, the node of the call's transcoder, cut off: the audio goes on through XC2, a standby transcoder is held on cm3 at once, and goes back when cm2 is heard again", async (t) => {
    const [a, c1] = [phones[0]!, phones[1]!];
    const at = await a.callUntilEstablished(c1);
    assert.equal(await active('cm2', 'XC2'), 1, 'through XC2');
    assert.equal(await active('cm3', 'XC3'), 0);
    const callStart = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    cluster.network.cut('cm2');
    const cutAt = Date.now();
    try {
      // Make before break: the replacement is allocated while the silent node's media still flows.
      await eventually(async () => (await active('cm3', 'XC3')) === 1, 8000, 'a standby transcoder on cm3');
      t.diagnostic(`standby held ${Date.now() - cutAt} ms after the cut`);
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      cluster.network.heal('cm2');
    }
    const healAt = Date.now() - callStart;
    await eventually(async () => (await state('cm1', 'cm2')) === 'up', 30_000, 'cm2 heard again');
    await eventually(async () => (await active('cm3', 'XC3')) === 0, 10_000, 'the standby released');
    assert.equal(await active('cm2', 'XC2'), 1, 'the call still goes through XC2');
    await new Promise((r) => setTimeout(r, 1000));
    await a.command('hangup');
    await c1.waitEvent('CALL_CLOSED', 10_000, at.callee);
    await eventually(async () => (await active('cm2', 'XC2')) === 0, 10_000, 'XC2 released');
    for (const [p, far] of [
      [a, 1000],
      [c1, 440],
    ] as const) {
      const gap = longestGapMs(readWav(p.recordings().at(-1)!), far, 500, healAt + 1000);
      assert.ok(gap <= 200, `${p.opts.number} heard a ${gap} ms gap: the media never left XC2`);
    }
    for (const n of ['cm1', 'cm2', 'cm3'])
      assert.doesNotMatch(cluster.procs.get(n)!.output(), /"msg":"node down"/, `${n} declared a node down`);
  });

  it('200 ms latency each way and 5 % loss on every bus link: a call across nodes through a transcoder still sets up and ends, and no node is declared down', async (t) => {
    for (const n of ['cm1', 'cm2', 'cm3']) {
      cluster.network.delay(n, 200);
      cluster.network.lossy(n, 0.05);
    }
    try {
      const [a, c1] = [phones[0]!, phones[1]!];
      await new Promise((r) => setTimeout(r, 3000));
      // The latency is there: a request from cm1 to cm3 crosses two links, four times 200 ms.
      const t0 = Date.now();
      const at = await a.callUntilEstablished(c1);
      const setupMs = Date.now() - t0;
      assert.ok(setupMs >= 800, `the call set up in ${setupMs} ms: the links are not slow`);
      t.diagnostic(`call set up across the slow, lossy bus in ${setupMs} ms`);
      assert.equal(await active('cm2', 'XC2'), 1);
      await new Promise((r) => setTimeout(r, 5000));
      await a.command('hangup');
      await c1.waitEvent('CALL_CLOSED', 15_000, at.callee);
      await eventually(async () => (await active('cm2', 'XC2')) === 0, 15_000, 'XC2 released over the slow bus');
      for (const n of ['cm1', 'cm2', 'cm3'])
        assert.doesNotMatch(cluster.procs.get(n)!.output(), /"msg":"node down"/, `${n} declared a node down`);
      const pcm = readWav(c1.recordings().at(-1)!);
      assert.ok(tonesIn(pcm, [440]).share[440]! > 0.5, '3001 heard 1001 (the media never crossed the bus)');
    } finally {
      for (const n of ['cm1', 'cm2', 'cm3']) cluster.network.heal(n);
    }
  });
});
