// Every MRGL selection rule, on a real embedded cluster (three call managers,
// serialized bus, device processes on their own nodes).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { AllocationError, type Allocation } from '../../src/mrm/mediaResourceManager.ts';
import { NODES, startCluster } from '../helpers/cluster.ts';

const CONFIG = `${NODES}
cluster: { request_timeout_ms: 300 }
media_resources:
  XA:    { type: transcoder, node: cm2, capacity: 1, codecs: [PCMU, PCMA] }
  XB:    { type: transcoder, node: cm3, capacity: 1, codecs: [PCMU, PCMA, G722] }
  XC:    { type: transcoder, node: cm1, capacity: 1, codecs: [PCMU, PCMA] }
  XEXEC: { type: transcoder, node: cm1, capacity: 1, codecs: [PCMU, PCMA, G722] }
  XDEF:  { type: transcoder, node: cm3, capacity: 1, codecs: [PCMU, PCMA] }
  CF1:   { type: conference_bridge, node: cm2, capacity: 4 }
  CF2:   { type: conference_bridge, node: cm3, capacity: 2 }
  MOH1:  { type: moh, node: cm2, capacity: 5, audio_sources: { "1": a.wav } }
  MOH2:  { type: moh, node: cm3, capacity: 5, audio_sources: { "1": a.wav, "2": b.wav } }
media_resource_groups:
  G_EXEC: { user_class: executive, devices: [XEXEC] }
  G1:     { devices: [CF1, XA, XB, MOH1] }
  G2:     { devices: [XC, MOH2] }
  G_LU:   { policy: least_used, devices: [CF1, CF2] }
media_resource_group_lists:
  L_MAIN: [G_EXEC, G1, G2]
  L_TWO:  [G2]
  L_LU:   [G_LU]
device_pools:
  DP:      { mrgl: L_MAIN }
  DP_EXEC: { mrgl: L_MAIN, user_class: executive }
phones:
  "1001": { node: cm1, password: p, device_pool: DP }
  "1002": { node: cm1, password: p, device_pool: DP, mrgl: L_TWO }
  "1003": { node: cm1, password: p, device_pool: DP_EXEC }
`;

describe('MRGL selection', () => {
  let cluster: EmbeddedCluster;
  const held: Allocation[] = [];
  const mrm = () => cluster.node('cm1').mrm;
  const alloc = async (...args: Parameters<ReturnType<typeof mrm>['allocate']>) => {
    const a = await mrm().allocate(...args);
    held.push(a);
    return a;
  };
  const releaseAll = async () => {
    for (const a of held.splice(0)) await a.release();
  };

  before(async () => {
    cluster = await startCluster(CONFIG);
  });
  after(async () => {
    await cluster.stop();
  });

  it('walks groups in MRGL order and devices in group order, then the default group, then fails with a trace', async () => {
    try {
      const got = [];
      for (let i = 0; i < 4; i++) got.push((await alloc({ phone: '1001', type: 'transcoder' })).resource);
      assert.deepEqual(got, ['XA', 'XB', 'XC', 'XDEF']);
      const err = await mrm()
        .allocate({ phone: '1001', type: 'transcoder' })
        .catch((e: unknown) => e);
      assert.ok(err instanceof AllocationError && err.code === 'no_resource');
      const steps = err.trace!.steps.map((s) => `${s.group}/${s.device ?? '*'}:${s.verdict}`);
      assert.deepEqual(steps, [
        'G_EXEC/*:user_class_mismatch',
        'G1/*:wrong_type',
        'G1/XA:unavailable',
        'G1/XB:unavailable',
        'G2/*:wrong_type',
        'G2/XC:unavailable',
        '(default)/XDEF:unavailable',
      ]);
      assert.match(err.trace!.steps[2]!.detail!, /out of resources \(active 1\/1\)/);
    } finally {
      await releaseAll();
    }
  });

  it('never sends a request to a device of the wrong type', async () => {
    const a = await alloc({ phone: '1001', type: 'conference_bridge' });
    await releaseAll();
    assert.equal(a.resource, 'CF1');
    assert.ok(a.trace.steps.every((s) => s.verdict !== 'allocated' || s.device === 'CF1'));
    const cm2 = cluster
      .node('cm2')
      .localResources()
      .find((p) => p.name === 'XA')!;
    assert.equal(cm2.active, 0);
  });

  it('skips devices lacking a capability (transcoder codec, MOH audio source)', async () => {
    const x = await alloc({ phone: '1001', type: 'transcoder', requirement: { codecs: ['PCMU', 'G722'] } });
    assert.equal(x.resource, 'XB');
    const xa = x.trace.steps.find((s) => s.device === 'XA')!;
    assert.equal(xa.verdict, 'no_capability');
    assert.match(xa.detail!, /does not transcode G722/);
    const m = await alloc({ phone: '1001', type: 'moh', requirement: { audio_source: 2 } });
    assert.equal(m.resource, 'MOH2');
    assert.equal(m.trace.steps.find((s) => s.device === 'MOH1')!.verdict, 'no_capability');
    await releaseAll();
  });

  it('keeps user-class groups for their class', async () => {
    const exec = await alloc({ phone: '1003', type: 'transcoder' });
    assert.equal(exec.resource, 'XEXEC');
    await releaseAll();
  });

  it("uses the phone's own MRGL over its device pool's, and an MRGL handed over with the request over both", async () => {
    const own = await alloc({ phone: '1002', type: 'transcoder' });
    assert.equal(own.trace.mrgl, 'L_TWO');
    assert.equal(own.trace.mrgl_source, 'phone');
    assert.equal(own.resource, 'XC');
    const pool = await alloc({ phone: '1001', type: 'transcoder' });
    assert.equal(pool.trace.mrgl_source, 'device_pool');
    assert.equal(pool.resource, 'XA');
    await releaseAll();
    const given = await alloc({ phone: '1001', type: 'transcoder', mrgl: 'L_TWO' });
    assert.equal(given.trace.mrgl_source, 'request');
    assert.equal(given.resource, 'XC');
    await releaseAll();
    await assert.rejects(
      mrm().allocate({ phone: '1001', type: 'transcoder', mrgl: 'L_NOPE' }),
      /unknown media resource group list "L_NOPE"/,
    );
  });

  it('least_used picks the lowest active/capacity ratio, listed order breaking ties', async () => {
    const got = [];
    try {
      for (let i = 0; i < 6; i++)
        got.push((await alloc({ phone: '1001', type: 'conference_bridge', mrgl: 'L_LU' })).resource);
    } finally {
      await releaseAll();
    }
    // CF1 cap 4, CF2 cap 2: 0/4=0/2 -> CF1; 1/4<0/2? no, CF2; 1/4<1/2 -> CF1; 2/4=1/2 -> CF1; 3/4>1/2 -> CF2; 3/4 vs 2/2 -> CF1
    assert.deepEqual(got, ['CF1', 'CF2', 'CF1', 'CF1', 'CF2', 'CF1']);
    await releaseAll();
  });

  it('refuses phones it does not control and unknown phones', async () => {
    await assert.rejects(
      cluster.node('cm2').mrm.allocate({ phone: '1001', type: 'mtp' }),
      /controlled by cm1, not cm2/,
    );
    await assert.rejects(mrm().allocate({ phone: '9999', type: 'mtp' }), /unknown phone "9999"/);
  });

  it('explain shows the walk and allocates nothing', async () => {
    const t = await mrm().explain({ phone: '1001', type: 'transcoder' });
    const verdicts = t.steps.filter((s) => s.device).map((s) => `${s.device}:${s.verdict}`);
    assert.deepEqual(
      verdicts.filter((v) => v.startsWith('X')),
      ['XA:would_allocate', 'XB:not_reached', 'XC:not_reached', 'XDEF:not_reached'],
    );
    assert.equal(t.steps[0]!.verdict, 'user_class_mismatch');
    assert.ok(verdicts.includes('CF1:wrong_type'), 'explain lists each wrong-type device');
    for (const cm of cluster.nodes.values())
      for (const p of cm.localResources()) assert.equal(p.active, 0, `${p.name} untouched`);
  });
});
