// Events on a signed bus (heartbeats, load reports) carry one HMAC tag per
// receiver under the key the sender shares with it: cheap to check, and still
// impossible to make for another node. Over a real in-memory bus between
// SignedBus instances with their own node keys.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BusMessage } from '../../src/cluster/bus.ts';
import { MemoryBus, MemoryHub } from '../../src/cluster/memoryBus.ts';
import { ephemeralKeys } from '../../src/cluster/nodeKeys.ts';
import { newBootId } from '../../src/cluster/pid.ts';
import { SignedBus } from '../../src/cluster/signedBus.ts';
import { eventually } from '../helpers/cluster.ts';

const SUBJECT = 'tandem.t.heartbeat';

describe('signed bus events', () => {
  const keys = ephemeralKeys(['cm1', 'cm2', 'cm3']);
  const node = (hub: MemoryHub, name: string) => {
    const raw = new MemoryBus(hub);
    const refused: string[] = [];
    const bus = new SignedBus(raw, {
      identity: keys.identities.get(name)!,
      keyring: keys.keyring,
      boot: newBootId(),
      onRefused: (r) => refused.push(r),
    });
    const got: BusMessage[] = [];
    bus.subscribe(SUBJECT, (m) => got.push(m));
    const wire: Uint8Array[] = [];
    raw.subscribe(SUBJECT, (m) => wire.push(m.data));
    return { raw, bus, got, refused, wire };
  };
  const text = (m: BusMessage) => Buffer.from(m.data).toString();

  it('the first event of a node that knows no peer is signed; once peers are heard, events are tagged per receiver and accepted', async () => {
    const hub = new MemoryHub();
    const [a, b] = [node(hub, 'cm1'), node(hub, 'cm2')];
    a.bus.publish(SUBJECT, Buffer.from('a1'));
    await eventually(() => b.got.some((m) => text(m) === 'a1'), 1000, 'cm2 to read the signed first event');
    assert.equal(Buffer.from(a.wire.at(-1)!)[3], 0x53, "'S': signed");
    b.bus.publish(SUBJECT, Buffer.from('b1'));
    await eventually(() => a.got.some((m) => text(m) === 'b1'), 1000, 'cm1 to read cm2');
    a.bus.publish(SUBJECT, Buffer.from('a2'));
    await eventually(() => b.got.some((m) => text(m) === 'a2'), 1000, 'cm2 to read the tagged event');
    assert.equal(Buffer.from(a.wire.at(-1)!)[3], 0x54, "'T': tagged");
    assert.deepEqual(b.got.find((m) => text(m) === 'a2')!.from?.node, 'cm1');
    assert.deepEqual([...a.refused, ...b.refused], []);
  });

  it("a node cannot make another's tags: cm3 replaying cm2's header with its own tags is refused; content changed on the way is refused", async () => {
    const hub = new MemoryHub();
    const [a, b, c] = [node(hub, 'cm1'), node(hub, 'cm2'), node(hub, 'cm3')];
    for (const n of [a, b, c]) n.bus.publish(SUBJECT, Buffer.from('hello'));
    await new Promise((r) => setTimeout(r, 20));
    b.bus.publish(SUBJECT, Buffer.from('b-tagged'));
    await eventually(() => a.got.some((m) => text(m) === 'b-tagged'), 1000, 'cm1 to read cm2');
    const real = Buffer.from(b.wire.at(-1)!);
    assert.equal(real[3], 0x54);
    // cm3 (a node of the cluster, with its own keys) builds an event in cm2's name: cm2's header, cm3's tag for cm1.
    // biome-ignore lint/complexity/useLiteralKeys: the test reaches the private tagger on purpose (a node of the cluster forging)
    const forgedBy3 = Buffer.from(c.bus['tag'](SUBJECT, Buffer.from('forged')) as Uint8Array);
    const headLen = (buf: Buffer) => 4 + 1 + buf[4]! + 1 + buf[5 + buf[4]!]! + 96 + 8;
    const forged = Buffer.concat([real.subarray(0, headLen(real)), forgedBy3.subarray(headLen(forgedBy3))]);
    a.raw.publish(SUBJECT, forged);
    // A bit of the content flipped on the way.
    const flipped = Buffer.from(real);
    flipped[flipped.length - 1]! ^= 1;
    a.raw.publish(SUBJECT, flipped);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!a.got.some((m) => text(m) === 'forged'), 'the forgery was not delivered');
    assert.equal(a.refused.filter((r) => r === 'bad_signature').length, 2, `refused: ${a.refused.join(',')}`);
  });

  it('a restarted receiver is not addressed until the sender hears its new start: nothing refused meanwhile, then read', async () => {
    const hub = new MemoryHub();
    const a = node(hub, 'cm1');
    const b = node(hub, 'cm2');
    a.bus.publish(SUBJECT, Buffer.from('x'));
    b.bus.publish(SUBJECT, Buffer.from('y'));
    await new Promise((r) => setTimeout(r, 20));
    // cm2 restarts: a new incarnation (boot, X25519 key) with the same node key.
    await b.raw.close();
    const b2 = node(hub, 'cm2');
    a.bus.publish(SUBJECT, Buffer.from('to-old-cm2'));
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(!b2.got.some((m) => text(m) === 'to-old-cm2'), 'tagged for the earlier start only');
    assert.deepEqual(b2.refused, [], 'and not taken for a forgery');
    b2.bus.publish(SUBJECT, Buffer.from('i-am-back'));
    await eventually(() => a.got.some((m) => text(m) === 'i-am-back'), 1000, 'cm1 to hear the new start');
    a.bus.publish(SUBJECT, Buffer.from('to-new-cm2'));
    await eventually(() => b2.got.some((m) => text(m) === 'to-new-cm2'), 1000, 'the new start to be addressed');
    assert.deepEqual([...a.refused, ...b2.refused], []);
  });
});
