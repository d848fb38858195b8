// Allocations on devices controlled by other nodes, and the fallbacks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pidNode } from '../../src/cluster/pid.ts';
import { NODES, useCluster } from '../helpers/cluster.ts';

const CONFIG = `${NODES}
cluster: { request_timeout_ms: 250, heartbeat_ms: 100, node_down_after_ms: 5000 }
media_resources:
  X2: { type: transcoder, node: cm2, capacity: 2, codecs: [PCMU, PCMA] }
  X3: { type: transcoder, node: cm3, capacity: 2, codecs: [PCMU, PCMA] }
media_resource_groups:
  G: { devices: [X2, X3] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: p, device_pool: DP }
`;

describe('cross-node allocation', () => {
  const fx = useCluster(CONFIG);
  const proc = (node: string, name: string) =>
    fx.cluster
      .node(node)
      .localResources()
      .find((p) => p.name === name)!;

  it('goes through the device process on the controlling node, and release returns capacity', async () => {
    const mrm = fx.cluster.node('cm1').mrm;
    const a = await mrm.allocate({ phone: '1001', type: 'transcoder' });
    assert.equal(a.resource, 'X2');
    assert.equal(pidNode(a.pid), 'cm2');
    assert.equal(a.pid, proc('cm2', 'X2').pid, 'the PID from the mapping table is the process on cm2');
    assert.equal(proc('cm2', 'X2').active, 1);
    assert.equal(a.state, 'held');
    await a.release();
    assert.equal(a.state, 'released');
    assert.equal(proc('cm2', 'X2').active, 0);
    assert.equal(mrm.get(a.id), undefined, 'no longer held');
    await a.release(); // safe twice: nothing more is sent
    assert.equal(proc('cm2', 'X2').active, 0);
    await assert.rejects(a.media({ legs: [{ codec: 'PCMU' }] }), { name: 'AllocationGoneError' });
  });

  it('moves to the next device when one is full, and counts out-of-resources', async () => {
    const mrm = fx.cluster.node('cm1').mrm;
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await mrm.allocate({ phone: '1001', type: 'transcoder' }));
    assert.deepEqual(
      held.map((a) => a.resource),
      ['X2', 'X2', 'X3'],
    );
    const third = held[2]!.trace.steps.map((s) => `${s.device}:${s.verdict}`);
    assert.deepEqual(third, ['X2:unavailable', 'X3:allocated']);
    const st = await fx.cluster.node('cm1').nodeStatus('cm2');
    assert.equal(st.devices.find((d) => d.name === 'X2')!.out_of_resources, 1);
    for (const a of held) await a.release();
    assert.equal(proc('cm2', 'X2').active + proc('cm3', 'X3').active, 0);
  });

  it("times out on a node that drops requests and moves on; the hung node's device stays untouched", async () => {
    const mrm = fx.cluster.node('cm1').mrm;
    fx.cluster.buses.get('cm2')!.dropRequests = true;
    try {
      const t0 = Date.now();
      const a = await mrm.allocate({ phone: '1001', type: 'transcoder' });
      const took = Date.now() - t0;
      assert.equal(a.resource, 'X3');
      const first = a.trace.steps[0]!;
      assert.equal(first.device, 'X2');
      assert.equal(first.verdict, 'timeout');
      assert.ok(took >= 240 && took < 1000, `walk took ${took} ms: one timeout, then the next device`);
      await a.release();
    } finally {
      fx.cluster.buses.get('cm2')!.dropRequests = false;
    }
    assert.equal(proc('cm2', 'X2').active, 0);
  });
});
