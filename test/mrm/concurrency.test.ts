// 2,000 concurrent allocation requests from three nodes against total
// capacity 100: exactly 100 succeed and no device is ever oversubscribed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AllocationError, type Allocation } from '../../src/mrm/mediaResourceManager.ts';
import { NODES, useCluster } from '../helpers/cluster.ts';

// Capacities 7+13+20+25+35 = 100, spread over the three nodes.
const CONFIG = `${NODES}
cluster: { request_timeout_ms: 10000 }
media_resources:
  B1: { type: conference_bridge, node: cm1, capacity: 7 }
  B2: { type: conference_bridge, node: cm2, capacity: 13 }
  B3: { type: conference_bridge, node: cm3, capacity: 20 }
  B4: { type: conference_bridge, node: cm1, capacity: 25 }
  B5: { type: conference_bridge, node: cm2, capacity: 35 }
media_resource_groups:
  G1: { devices: [B1, B2, B3] }
  G2: { policy: least_used, devices: [B4, B5] }
media_resource_group_lists:
  L: [G1, G2]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: p, device_pool: DP }
  "2001": { node: cm2, password: p, device_pool: DP }
  "3001": { node: cm3, password: p, device_pool: DP }
`;

describe('concurrency', () => {
  const fx = useCluster(CONFIG);

  it('2,000 concurrent requests, capacity 100: exactly 100 allocated, none oversubscribed, all others fail with a trace', async () => {
    const callers = [
      ['cm1', '1001'],
      ['cm2', '2001'],
      ['cm3', '3001'],
    ] as const;
    const procs = [...fx.cluster.nodes.values()].flatMap((cm) => cm.localResources());
    let peakViolation = '';
    // Watch every process on every turn of the event loop while the storm runs.
    const watch = setInterval(() => {
      for (const p of procs) if (p.active > p.capacity) peakViolation = `${p.name} at ${p.active}/${p.capacity}`;
    }, 0);
    const results = await Promise.allSettled(
      Array.from({ length: 2000 }, (_, i) => {
        const [node, phone] = callers[i % 3]!;
        return fx.cluster.node(node).mrm.allocate({ phone, type: 'conference_bridge' });
      }),
    );
    clearInterval(watch);
    const ok = results
      .filter((r): r is PromiseFulfilledResult<Allocation> => r.status === 'fulfilled')
      .map((r) => r.value);
    const failed = results
      .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      .map((r) => r.reason as unknown);
    assert.equal(ok.length, 100);
    assert.equal(failed.length, 1900);
    assert.equal(peakViolation, '', 'no device above capacity');
    for (const p of procs) assert.equal(p.active, p.spec.capacity, `${p.name} is full`);
    for (const e of failed) {
      assert.ok(e instanceof AllocationError && e.code === 'no_resource');
      assert.equal(e.trace!.steps.length, 5, 'each failure traces all five devices');
      assert.ok(e.trace!.steps.every((s) => s.verdict === 'unavailable'));
    }
    assert.equal(new Set(ok.map((a) => a.id)).size, 100);
    const byNode = new Map<string, number>();
    for (const a of ok) byNode.set(a.phone, (byNode.get(a.phone) ?? 0) + 1);
    assert.equal(byNode.size, 3, 'every requesting node got some');

    await Promise.all(ok.map((a) => a.release()));
    for (const p of procs) assert.equal(p.active, 0, `${p.name} back to zero`);
    for (const cm of fx.cluster.nodes.values()) assert.equal(cm.mrm.allocations().length, 0);
  });
});
