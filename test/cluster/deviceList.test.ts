// Over NATS a node's devices are one value of the mapping table (their PIDs
// under the node's boot): a start is one write, not one per device. Real
// nats-server, mapping table stores as two nodes run them: a reader sees each
// device come and go as if it had its own key; a node restarted with a new
// boot replaces every PID; a list too large for the bus is refused with a
// named error that says what to do, before anything is written.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import pino from 'pino';
import { DeviceListTooLargeError, KvRegistryStore } from '../../src/cluster/kvRegistryStore.ts';
import type { RegistryEntry } from '../../src/cluster/messages.ts';
import type { RegistryChange } from '../../src/cluster/registryStore.ts';
import { makePid } from '../../src/cluster/pid.ts';
import { eventually } from '../helpers/cluster.ts';
import { NatsServer } from '../helpers/natsServer.ts';

const BUCKET = 'tandem_list_devices';
const device = (name: string, node: string, boot: string): RegistryEntry => ({
  name,
  node,
  pid: makePid({ node, kind: 'media_resource', name, boot }),
  kind: 'media_resource',
  type: 'transcoder',
  boot,
});
const log = pino({ level: 'silent' });

describe("a node's devices are one value of the mapping table", () => {
  const servers: NatsServer[] = [];
  const conns: NatsConnection[] = [];
  const stores: KvRegistryStore[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const c of conns) await c.close();
    for (const s of servers) await s.stop();
  });
  const store = async (server: NatsServer, node: string, onChange: (c: RegistryChange) => void = () => undefined) => {
    const nc = await connect({ servers: server.url });
    conns.push(nc);
    const s = new KvRegistryStore(nc, BUCKET, node, log);
    stores.push(s);
    await s.start(onChange);
    return s;
  };

  let nats: NatsServer;
  before(async () => {
    nats = await NatsServer.start();
    servers.push(nats);
  });

  it('300 devices are one key; a reader sees 300 entries, one removal, and every PID replaced after a restart', async () => {
    const changes: RegistryChange[] = [];
    const reader = await store(nats, 'cm2', (c) => void changes.push(c));
    await reader.watchNode('cm1');
    const writer = await store(nats, 'cm1');
    const names = Array.from({ length: 300 }, (_, i) => `X${i}`);
    await Promise.all(names.map((n) => writer.put(device(n, 'cm1', 'b1'))));
    const kv = await new Kvm(conns[0]!).open(BUCKET);
    const keys: string[] = [];
    for await (const k of await kv.keys('devices.>')) keys.push(k);
    assert.deepEqual(keys, ['devices.cm1']);
    const status = await kv.status();
    assert.ok(status.values <= 3, `${status.values} writes for 300 devices`);
    await eventually(
      () =>
        new Set(changes.filter((c) => c.op === 'put').map((c) => (c.op === 'put' ? c.entry.name : ''))).size === 300,
      5000,
      'the reader to see 300 devices',
    );
    const first = changes.find((c) => c.op === 'put' && c.entry.name === 'X7');
    assert.equal(
      first?.op === 'put' && first.entry.pid,
      makePid({ node: 'cm1', kind: 'media_resource', name: 'X7', boot: 'b1' }),
    );

    changes.length = 0;
    await writer.delete(device('X7', 'cm1', 'b1'));
    await writer.delete(device('X8', 'cm1', 'OLD')); // another incarnation's: nothing happens to X8
    await eventually(() => changes.length >= 1, 5000, 'the removal to arrive');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(changes, [
      { op: 'delete', name: 'X7', pid: makePid({ node: 'cm1', kind: 'media_resource', name: 'X7', boot: 'b1' }) },
    ]);

    // cm1 restarts (a new process, a new boot): its first list replaces every PID.
    changes.length = 0;
    const again = await store(nats, 'cm1');
    await Promise.all(names.filter((n) => n !== 'X7').map((n) => again.put(device(n, 'cm1', 'b2'))));
    await eventually(() => changes.length >= 299, 5000, 'the new PIDs to arrive');
    assert.ok(
      changes.every((c) => c.op === 'put' && c.entry.boot === 'b2'),
      'only puts of the new boot',
    );
  });

  it('a list too large for the bus is refused with a named error, nothing written', async () => {
    const small = await NatsServer.start('max_payload: 8192\n');
    servers.push(small);
    const s = await store(small, 'cm9');
    const many = Array.from({ length: 200 }, (_, i) => device(`BIG_DEVICE_${i}`, 'cm9', 'b1'));
    const results = await Promise.allSettled(many.map((d) => s.put(d)));
    const refused = results.find((r) => r.status === 'rejected');
    assert.ok(refused, 'refused');
    assert.ok(refused.reason instanceof DeviceListTooLargeError, String(refused.reason));
    assert.match(refused.reason.message, /devices\.cm9 is \d+ bytes, more than the bus carries \(max_payload 8192\)/);
    const kv = await new Kvm(conns.at(-1)!).open(BUCKET);
    assert.equal(await kv.get('devices.cm9'), null);
  });
});
