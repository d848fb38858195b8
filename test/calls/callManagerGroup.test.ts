// Who controls a phone of a Call Manager Group [cm1, cm2] when the two nodes'
// views of each other differ: two registrars joined by a shared mapping
// table, each node's view of the other scripted. The race seen in a
// fresh-clone run: the phone registers at both at once, cm2 has not heard of
// cm1 yet and takes the phone; cm1, first of the group and alive, must take
// it back instead of yielding for good.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registrar } from '../../src/calls/registrar.ts';
import { controllerOf } from '../../src/calls/callManagerGroup.ts';
import { makePid } from '../../src/cluster/pid.ts';
import { PhoneProcess, type Registration } from '../../src/devices/phoneProcess.ts';
import { silentLogger } from '../../src/log.ts';
import { model, NODES } from '../helpers/cluster.ts';

const m = model(`${NODES}
device_pools:
  DP12: { call_managers: [cm1, cm2] }
phones:
  "1001": { node: cm1, password: a1, device_pool: DP12 }
`);

type Status = 'up' | 'unreachable' | 'down' | 'unknown';

/** Two nodes of the group and the mapping table's entry for 1001 (which node published it, in order). */
function group() {
  const views: Record<string, Record<string, Status>> = { cm1: {}, cm2: {} };
  const published: string[] = [];
  const regs: Record<string, Registrar> = {};
  for (const node of ['cm1', 'cm2']) {
    const proc = new PhoneProcess(makePid({ node, kind: 'phone', name: '1001', boot: 'b1' }), m.phones.get('1001')!);
    regs[node] = new Registrar({
      model: m,
      node,
      phone: () => proc,
      controls: (n) => controllerOf(m.phones.get(n)!, node, { statusOf: (o) => views[node]![o] ?? 'unknown' }) === node,
      publish: async (_n, r) => {
        if (!r) return;
        published.push(node);
        // The other node hears of the new entry (the mapping table's 'registered' event).
        const other = node === 'cm1' ? 'cm2' : 'cm1';
        await regs[other]!.takenElsewhere('1001', node);
      },
      log: silentLogger(),
    });
  }
  const reg = (port: number): Registration => ({
    contact: `sip:1001@127.0.0.1:${port}`,
    transport: 'UDP',
    address: '127.0.0.1',
    port,
    expires_at: Date.now() + 60_000,
  });
  return {
    views,
    published,
    regs,
    reg,
    owner: () => published.at(-1),
    close: () => Object.values(regs).forEach((r) => r.close()),
  };
}

describe('a phone of a Call Manager Group when the nodes see each other differently', () => {
  it('cm2 had not heard of cm1 and took the phone: cm1, alive and first, takes it back and cm2 yields', async () => {
    const g = group();
    g.views.cm1!.cm2 = 'up';
    await g.regs.cm1!.bind('1001', g.reg(5060), undefined);
    assert.equal(g.owner(), 'cm1');
    // cm2 has not heard of cm1 yet (its view says nothing of it): it controls the phone as it sees things.
    await g.regs.cm2!.bind('1001', g.reg(5060), undefined);
    assert.deepEqual(g.published, ['cm1', 'cm2', 'cm1'], 'cm2 took it, cm1 took it back');
    assert.equal(g.regs.cm1!.isActive('1001'), true);
    assert.equal(g.regs.cm2!.isActive('1001'), false, 'cm2 keeps its binding on standby');
    // cm2 hears cm1 now: nothing changes.
    g.views.cm2!.cm1 = 'up';
    await g.regs.cm2!.reevaluate();
    assert.equal(g.owner(), 'cm1');
    g.close();
  });

  it('cm1 is down for cm2: cm2 takes the phone over; when cm1 is back and the phone registers there, cm1 has it again', async () => {
    const g = group();
    g.views.cm2!.cm1 = 'up';
    await g.regs.cm2!.bind('1001', g.reg(5060), undefined);
    assert.deepEqual(g.published, [], 'cm2 holds the binding on standby while cm1 is alive');
    g.views.cm2!.cm1 = 'down';
    await g.regs.cm2!.reevaluate();
    assert.equal(g.owner(), 'cm2');
    g.views.cm2!.cm1 = 'up';
    g.views.cm1!.cm2 = 'up';
    await g.regs.cm2!.reevaluate();
    assert.equal(g.owner(), 'cm2', 'the phone stays at cm2 until it registers at cm1');
    await g.regs.cm1!.bind('1001', g.reg(5060), undefined);
    assert.equal(g.owner(), 'cm1');
    assert.equal(g.regs.cm2!.isActive('1001'), false);
    g.close();
  });

  it('a later node never overrules an earlier one, and a node without a binding takes nothing back', async () => {
    const g = group();
    // cm1 has no binding (the phone registers only at cm2, which thinks cm1 down).
    g.views.cm2!.cm1 = 'down';
    await g.regs.cm2!.bind('1001', g.reg(5060), undefined);
    assert.deepEqual(g.published, ['cm2'], 'cm1 has no binding: nothing to take back');
    // cm1 publishes (the phone registered there): cm2, later in the group, yields rather than fight.
    await g.regs.cm1!.bind('1001', g.reg(5060), undefined);
    assert.deepEqual(g.published, ['cm2', 'cm1']);
    assert.equal(g.regs.cm2!.isActive('1001'), false);
    g.close();
  });
});
