// Node failures and bad bus input on the embedded cluster.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode } from '../../src/cluster/codec.ts';
import type { Allocation } from '../../src/mrm/mediaResourceManager.ts';
import { NODES, eventually, signedAs, useCluster } from '../helpers/cluster.ts';

// cm4 is in the config (it has a key) but never runs: a node that died right after its first request.
const CONFIG = `${NODES}  cm4: { sip: "127.0.0.1:15090", admin: "127.0.0.1:18084" }
cluster: { request_timeout_ms: 200, heartbeat_ms: 100, node_down_after_ms: 400 }
media_resources:
  M2: { type: mtp, node: cm2, capacity: 3 }
  M3: { type: mtp, node: cm3, capacity: 3 }
media_resource_groups:
  G: { devices: [M2, M3] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: p, device_pool: DP }
  "3001": { node: cm3, password: p, device_pool: DP }
`;

describe('faults on the embedded cluster', () => {
  const fx = useCluster(CONFIG, { nodes: ['cm1', 'cm2', 'cm3'] });

  it('drops malformed and foreign messages on every cluster subject and keeps working', async () => {
    const cm2 = fx.cluster.node('cm2');
    const s = cm2.subjects;
    // Unsigned bytes never reach a handler; signed garbage (a node with a bug) is refused by the schemas.
    const raw = fx.cluster.buses.get('cm1')!;
    const bus = signedAs(fx.cluster, 'cm1', 'cm1', fx.cluster.node('cm1').boot);
    const garbage = [
      new TextEncoder().encode('{not json'),
      encode({ to: 'nobody', body: 1 }),
      encode([1, 2, 3]),
      encode(null),
    ];
    for (const g of garbage) {
      const unsigned = JSON.parse(new TextDecoder().decode(await raw.request(s.inbox('cm2'), g, 500))) as {
        ok: boolean;
        code: string;
      };
      assert.equal(unsigned.code, 'unauthenticated');
      const reply = JSON.parse(new TextDecoder().decode(await bus.request(s.inbox('cm2'), g, 500))) as {
        ok: boolean;
        code: string;
      };
      assert.equal(reply.ok, false);
      assert.equal(reply.code, 'bad_request');
      for (const subj of [s.registry, s.heartbeat, s.load]) {
        bus.publish(subj, g);
        raw.publish(subj, g);
      }
    }
    const m2 = cm2.localResources()[0]!;
    const badBodies = [
      { op: 'allocate' },
      { op: 'explode' },
      { op: 'allocate', allocation_id: 'x', requester: { node: 'cm1', boot: 'b' }, phone: '1', type: 'mtp', extra: 1 },
    ];
    for (const body of badBodies) {
      const raw = await bus.request(s.inbox('cm2'), encode({ to: m2.pid, body }), 500);
      assert.match(new TextDecoder().decode(raw), /"code":"bad_request"/);
    }
    assert.ok(cm2.post.dropped >= garbage.length + badBodies.length);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(m2.active, 0, 'no state was touched');
    const a = await fx.cluster.node('cm1').mrm.allocate({ phone: '1001', type: 'mtp' });
    assert.equal(a.resource, 'M2');
    assert.equal(fx.cluster.node('cm1').devices.size, 4, 'mapping table not corrupted');
    await a.release();
  });

  it('a crashed device node drops out of every walk; its allocations are reported lost; a restart re-registers its devices', async () => {
    const cm1 = fx.cluster.node('cm1');
    const held = await cm1.mrm.allocate({ phone: '1001', type: 'mtp' });
    assert.equal(held.node, 'cm2');
    const lost: Allocation[] = [];
    cm1.mrm.on('allocation_lost', (a) => lost.push(a));
    const handleSaid: string[] = [];
    held.on('lost', (why) => handleSaid.push(why));
    const oldPid = held.pid;
    await fx.cluster.crash('cm2');
    const waited = await eventually(() => !cm1.devices.lookup('M2').registered, 2000, 'cm2 down');
    assert.ok(waited <= 1000, `marked down in ${waited} ms`);
    // Unreachable first (out of the walks at once); down, with its allocations lost, once "no responders" has held a moment.
    await eventually(() => lost.length > 0, 2000, 'the allocation on cm2 reported lost');
    assert.deepEqual(
      lost.map((a) => a.id),
      [held.id],
    );
    // The holder's handle heard it too, and is final: using it fails with a named error, releasing it sends nothing.
    assert.equal(handleSaid.length, 1);
    assert.equal(held.state, 'lost');
    await assert.rejects(held.media({ legs: [{ codec: 'PCMU' }] }), { name: 'AllocationGoneError' });
    await held.release();
    const a = await cm1.mrm.allocate({ phone: '1001', type: 'mtp' });
    assert.equal(a.resource, 'M3');
    assert.equal(a.trace.steps[0]!.verdict, 'not_registered');
    assert.match(a.trace.steps[0]!.detail!, /node cm2 is down/);
    await a.release();

    const cm2 = await fx.cluster.startNode('cm2');
    await fx.cluster.settled();
    for (const cm of fx.cluster.nodes.values()) {
      const l = cm.devices.lookup('M2');
      assert.ok(l.registered, `${cm.name} sees M2 again`);
      assert.equal(l.entry.pid, cm2.localResources()[0]!.pid);
      assert.notEqual(l.entry.pid, oldPid, 'new incarnation, new PID');
    }
    assert.equal(cm2.localResources()[0]!.active, 0, 'the restarted device process starts empty');
  });

  it('a lease asked for by a node never heard of is freed when no heartbeat follows; one from a replaced start at once', async () => {
    const cm2 = fx.cluster.node('cm2');
    const m2 = cm2.localResources()[0]!;
    const ask = async (id: string, requester: { node: string; boot: string }) => {
      const body = { op: 'allocate', allocation_id: id, requester, phone: '1001', type: 'mtp' };
      const bus = signedAs(fx.cluster, 'cm1', requester.node, requester.boot);
      return new TextDecoder().decode(await bus.request(cm2.subjects.inbox('cm2'), encode({ to: m2.pid, body }), 500));
    };
    // A node whose first heartbeat never comes (it died right after asking).
    assert.match(await ask('ghost-1', { node: 'cm4', boot: 'zzzzzzzzz00' }), /"status":"available"/);
    assert.equal(m2.active, 1);
    const t = await eventually(() => m2.active === 0, 2000, 'the ghost lease to be reclaimed');
    assert.ok(t >= 200, `reclaimed after ${t} ms: the requester was not given its node_down_after_ms`);
    // An earlier start of cm1 (cm1 is up with a later boot): void at once.
    assert.match(await ask('stale-1', { node: 'cm1', boot: '00000000000' }), /"status":"available"/);
    await eventually(() => m2.active === 0, 200, 'the stale lease to be reclaimed');
  });

  it("a crashed requesting node's allocations are reclaimed by the device processes", async () => {
    const cm3 = fx.cluster.node('cm3');
    const m2 = () => fx.cluster.node('cm2').localResources()[0]!;
    for (let i = 0; i < 2; i++) await cm3.mrm.allocate({ phone: '3001', type: 'mtp' });
    assert.equal(m2().active, 2);
    await fx.cluster.crash('cm3');
    const t = await eventually(() => m2().active === 0, 2000, 'reclaim');
    assert.ok(t <= 1000, `reclaimed in ${t} ms`);
  });
});
