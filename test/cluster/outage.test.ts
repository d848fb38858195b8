// Call preservation: the bus is for signalling, not for media. Three node
// processes over a real nats-server; two calls from cm1 to cm3, each through
// a transcoder on cm2 (PCMU <-> PCMA), between real phones. nats-server is
// killed for 10 s: no node may declare another down, no call may drop and
// the audio may not stop, because none of it crossed the bus. A phone that
// hangs up during the outage is heard of after it: the far half ends (BYE)
// and the transcoder's unit is freed, so nothing leaks.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { adminFetch } from '../helpers/admin.ts';
import { longestGapMs, readWav, tonesIn } from '../helpers/audio.ts';
import { Baresip } from '../helpers/baresip.ts';
import { eventually } from '../helpers/cluster.ts';
import { useNatsNodes } from '../helpers/natsNodes.ts';

type Json = Record<string, unknown>;
const OUTAGE_MS = 10_000;

describe('a 10 s bus outage under calls through a device on a third node', () => {
  const phones: Baresip[] = [];
  const cluster = useNatsNodes({
    name: 'outage',
    nodes: ['cm1', 'cm2', 'cm3'],
    rtp: true,
    cluster: 'node_dead_after_ms: 30000',
    config: `
media_resources:
  XC2: { type: transcoder, node: cm2, capacity: 4, codecs: [PCMU, PCMA] }
media_resource_groups:
  G: { devices: [XC2] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: a1, device_pool: DP, codecs: [PCMU] }
  "1002": { node: cm1, password: a2, device_pool: DP, codecs: [PCMU] }
  "3001": { node: cm3, password: c1, device_pool: DP, codecs: [PCMA] }
  "3002": { node: cm3, password: c2, device_pool: DP, codecs: [PCMA] }
`,
  });
  const api = async (node: string, path: string) =>
    (await (await adminFetch(`http://${cluster.admin[node]}${path}`)).json()) as Json[];
  const xc2 = async () => (await api('cm2', '/api/resources')).find((r) => r.name === 'XC2')!;
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
  });

  it('keeps both calls and their audio, declares no node down, and after it ends the call hung up meanwhile and frees its unit', async () => {
    const { sip } = cluster;
    const a1 = await Baresip.start({ number: '1001', password: 'a1', registrar: sip.cm1!, toneHz: 440 });
    const a2 = await Baresip.start({ number: '1002', password: 'a2', registrar: sip.cm1!, toneHz: 500 });
    const c1 = await Baresip.start({
      number: '3001',
      password: 'c1',
      registrar: sip.cm3!,
      toneHz: 1000,
      codecs: ['pcma'],
    });
    const c2 = await Baresip.start({
      number: '3002',
      password: 'c2',
      registrar: sip.cm3!,
      toneHz: 1200,
      codecs: ['pcma'],
    });
    phones.push(a1, a2, c1, c2);
    for (const p of phones) assert.equal((await p.registration()).status, 200);
    await eventually(
      async () => {
        const list = (await api('cm1', '/api/phones')) as Array<{ number: string; sip_registration: unknown }>;
        return ['3001', '3002'].every((n) => list.find((p) => p.number === n)?.sip_registration != null);
      },
      10_000,
      'cm1 to see 3001 and 3002 registered',
    );
    const at1 = await a1.callUntilEstablished(c1);
    const at2 = await a2.callUntilEstablished(c2);
    assert.equal((await xc2()).active, 2, 'both calls through XC2');
    const callStart = Date.now();
    await new Promise((r) => setTimeout(r, 2000));

    const outageAt = Date.now() - callStart;
    await cluster.nats.down();
    // 1002 hangs up while the bus is away: cm3 and cm2 cannot be told now.
    await new Promise((r) => setTimeout(r, OUTAGE_MS / 2));
    await a2.command('hangup');
    await new Promise((r) => setTimeout(r, OUTAGE_MS / 2));
    const cm1Calls = await api('cm1', '/api/calls');
    assert.deepEqual(
      cm1Calls.map((c) => c.phone),
      ['1001'],
      'cm1 kept the call that was not hung up',
    );
    await cluster.nats.up();
    const backAt = Date.now() - callStart;

    // After the outage: the far half of the hung-up call ends (3002 gets its BYE) and XC2's unit comes back.
    await c2.waitEvent('CALL_CLOSED', 20_000, at2.callee);
    await eventually(
      async () => (await xc2().catch(() => ({ active: -1 }))).active === 1,
      20_000,
      'XC2 down to the one call left',
    );
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(
      (await api('cm3', '/api/calls')).map((c) => [c.phone, c.state]),
      [['3001', 'up']],
    );
    assert.deepEqual(
      (await api('cm1', '/api/calls')).map((c) => [c.phone, c.state]),
      [['1001', 'up']],
    );
    for (const n of ['cm1', 'cm2', 'cm3']) {
      const nodes = await api(n, '/api/nodes');
      assert.ok(
        nodes.every((x) => x.state === 'up'),
        `${n} sees ${JSON.stringify(nodes.map((x) => [x.name, x.state]))}`,
      );
      assert.doesNotMatch(cluster.procs.get(n)!.output(), /"msg":"node down"/, `${n} declared a node down`);
      assert.match(cluster.procs.get(n)!.output(), /cut off from the cluster/, `${n} knew it was cut off`);
    }

    // The call that went on: both phones heard each other all along, with no gap around the outage.
    await a1.command('hangup');
    await c1.waitEvent('CALL_CLOSED', 10_000, at1.callee);
    await eventually(async () => (await xc2()).active === 0, 5000, 'XC2 idle');
    await Promise.all([a1, c1].map((p) => p.recordingsClosed()));
    for (const [p, far, own] of [
      [a1, 1000, 440],
      [c1, 440, 1000],
    ] as const) {
      const pcm = readWav(p.recordings().at(-1)!);
      const t = tonesIn(pcm, [far, own]);
      assert.ok(t.share[far]! > 0.5, `${p.opts.number} heard ${JSON.stringify(t.share)}`);
      const gap = longestGapMs(pcm, far, 500, backAt + 2000);
      assert.ok(gap <= 200, `${p.opts.number} heard a ${gap} ms gap between ${outageAt} ms and ${backAt} ms`);
    }
  });
});
