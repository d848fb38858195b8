// A mapping table that lost values without a trace (a bucket made by an
// older version, which allows rollup headers; an operator's purge; lost
// JetStream storage) heals: each node checks the stream against the keys it
// has seen and writes its own entries back. Real nats-server, two mapping
// table stores as two nodes would run them; the bucket is made the old way
// (by the KV client, rollups allowed) before they open it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import pino from 'pino';
import { KvRegistryStore } from '../../src/cluster/kvRegistryStore.ts';
import type { RegistryEntry } from '../../src/cluster/messages.ts';
import { makePid } from '../../src/cluster/pid.ts';
import { eventually } from '../helpers/cluster.ts';
import { NatsServer } from '../helpers/natsServer.ts';

const BUCKET = 'tandem_heal_devices';
const entry = (name: string, node: string): RegistryEntry => ({
  name,
  node,
  pid: makePid({ node, kind: 'media_resource', name, boot: 'b1' }),
  kind: 'media_resource',
  type: 'transcoder',
  boot: 'b1',
});
const phone = (name: string, node: string): RegistryEntry => ({
  name,
  node,
  pid: makePid({ node, kind: 'phone', name, boot: 'b1' }),
  kind: 'phone',
  boot: 'b1',
});

describe('the mapping table heals after values vanish', () => {
  let nats: NatsServer;
  const conns: NatsConnection[] = [];
  const stores: KvRegistryStore[] = [];
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
  before(async () => {
    nats = await NatsServer.start();
    for (let i = 0; i < 3; i++) conns.push(await connect({ servers: nats.url }));
    await new Kvm(conns[2]!).create(BUCKET, { history: 1 }); // the old way: the KV client allows rollups
  });
  after(async () => {
    for (const s of stores) await s.close();
    for (const c of conns) await c.close();
    await nats?.stop();
  });

  it('a rollup leaves one value; within 2 s both owners have written theirs back, and a reader started afterwards sees them all', async () => {
    for (const [i, node] of ['cm1', 'cm2'].entries()) {
      const s = new KvRegistryStore(conns[i]!, BUCKET, node, log);
      await s.start(() => undefined);
      stores.push(s);
      await Promise.all(['A', 'B', 'C'].map((d) => s.put(entry(`${d}${i + 1}`, node))));
      await s.put(phone(`100${i + 1}`, node));
    }
    assert.match(lines.join(''), /allows rollup headers/, 'the old stream is reported');
    const kv = await new Kvm(conns[2]!).open(BUCKET);
    const keys = async () => {
      const out: string[] = [];
      for await (const k of await kv.keys()) out.push(k);
      return out.sort();
    };
    // (a node's devices are one key: their list)
    const all = ['devices.cm1', 'devices.cm2', 'numbers.1001', 'numbers.1002'];
    assert.deepEqual(await keys(), all);
    const h = headers();
    h.set('Nats-Rollup', 'all');
    const t0 = Date.now();
    await jetstream(conns[2]!).publish(`$KV.${BUCKET}.devices.cm9.X`, new TextEncoder().encode('{}'), { headers: h });
    assert.deepEqual(await keys(), ['devices.cm9.X'], 'wiped');
    await eventually(
      async () => (await keys()).length === all.length + 1,
      2000,
      'both owners to write their entries back',
    );
    assert.ok(Date.now() - t0 < 2000);
    assert.deepEqual(
      stores.map((s) => s.heals),
      [1, 1],
    );
    assert.match(lines.join(''), /mapping table lost values/);
    // A node that starts now reads every entry.
    const seen: string[] = [];
    const late = new KvRegistryStore(conns[2]!, BUCKET, 'cm3', log);
    stores.push(late);
    await late.start((c) => void (c.op === 'put' && seen.push(c.entry.name)));
    await Promise.all(['cm1', 'cm2'].map((n) => late.watchNode(n)));
    await eventually(() => seen.length === 8, 2000, 'the late reader to see eight entries');
    assert.deepEqual(seen.sort(), ['1001', '1002', 'A1', 'A2', 'B1', 'B2', 'C1', 'C2']);
  });
});
