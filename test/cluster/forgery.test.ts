// Someone on the bus without a node's key (or a node speaking for another)
// tries what the issue's attacker did over NATS: free other nodes' leases,
// allocate in another node's name, evict a healthy node with a forged
// goodbye, delete and forge mapping-table entries, bring in a node the config
// does not know. The in-memory bus is signed like NATS, so every forgery is
// tried here against the same checks; test/cluster/nats.test.ts adds what
// nats-server itself refuses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode } from '../../src/cluster/codec.ts';
import { NodeIdentity, NodeKeyring } from '../../src/cluster/nodeKeys.ts';
import { SignedBus } from '../../src/cluster/signedBus.ts';
import { makePid } from '../../src/cluster/pid.ts';
import { NODES, eventually, signedAs, useCluster } from '../helpers/cluster.ts';
import { VIEWER_TOKEN } from '../helpers/admin.ts';
import { parseConfig } from '../../src/config/load.ts';

const CONFIG = `${NODES}
cluster: { request_timeout_ms: 300, heartbeat_ms: 100, node_down_after_ms: 500 }
media_resources:
  X2: { type: transcoder, node: cm2, capacity: 2, codecs: [PCMU, PCMA] }
media_resource_groups:
  G: { devices: [X2] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: p, device_pool: DP }
  "3001": { node: cm3, password: p, device_pool: DP }
`;

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('forged bus messages and mapping-table entries', () => {
  const fx = useCluster(CONFIG);
  const refused = (node: string) =>
    fx.cluster
      .node(node)
      .refusals()
      .filter((r) => r.edge === 'bus')
      .reduce((n, r) => n + r.count, 0);

  it("cannot free another node's lease or allocate in its name; active never exceeds capacity", async () => {
    const cm1 = fx.cluster.node('cm1');
    const cm2 = fx.cluster.node('cm2');
    const x2 = cm2.localResources()[0]!;
    const held = await cm1.mrm.allocate({ phone: '1001', type: 'transcoder' });
    assert.equal(x2.active, 1);
    const before = refused('cm2');
    const raw = fx.cluster.buses.get('cm3')!;
    const cm3 = signedAs(fx.cluster, 'cm3', 'cm3', fx.cluster.node('cm3').boot);
    const inbox = cm2.subjects.inbox('cm2');
    const release = encode({ to: x2.pid, body: { op: 'release', allocation_id: held.id } });
    // a stranger without any key, then a node that does not hold the lease
    assert.match(text(await raw.request(inbox, release, 500)), /"code":"unauthenticated"/);
    assert.match(text(await cm3.request(inbox, release, 500)), /"code":"forbidden"/);
    // allocating in cm1's name, unsigned and signed by cm3
    for (let i = 0; i < 4; i++) {
      const body = {
        op: 'allocate',
        allocation_id: `steal-${i}`,
        requester: { node: 'cm1', boot: cm1.boot },
        phone: '1001',
        type: 'transcoder',
      };
      assert.match(text(await raw.request(inbox, encode({ to: x2.pid, body }), 500)), /"code":"unauthenticated"/);
      assert.match(text(await cm3.request(inbox, encode({ to: x2.pid, body }), 500)), /"code":"forbidden"/);
    }
    assert.equal(x2.active, 1, 'the lease is intact and nothing was stolen');
    assert.ok(x2.active <= x2.capacity);
    assert.ok(refused('cm2') >= before + 10, 'every forgery counted');
    await held.release();
    assert.equal(x2.active, 0);
  });

  it('a forged goodbye or heartbeat does not evict a healthy node', async () => {
    const cm1 = fx.cluster.node('cm1');
    const cm2 = fx.cluster.node('cm2');
    const s = cm1.subjects;
    const leaving = encode({ node: 'cm2', boot: cm2.boot, ts: Date.now(), leaving: true });
    fx.cluster.buses.get('cm3')!.publish(s.heartbeat, leaving);
    signedAs(fx.cluster, 'cm3', 'cm3', fx.cluster.node('cm3').boot).publish(s.heartbeat, leaving);
    // A restart of cm2 announced by someone else would also push the real cm2 out.
    signedAs(fx.cluster, 'cm3', 'cm3', fx.cluster.node('cm3').boot).publish(
      s.heartbeat,
      encode({ node: 'cm2', boot: 'zzzzzzzzzzz', ts: Date.now() }),
    );
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(cm1.liveness.isUp('cm2'), 'cm2 is still up for cm1');
    assert.equal(cm1.liveness.bootOf('cm2'), cm2.boot);
    assert.ok(cm1.devices.lookup('X2').registered);
  });

  it('mapping-table forgeries (delete, re-point, a node the config does not know) change nothing; the MRM still picks the real device', async () => {
    const cm1 = fx.cluster.node('cm1');
    const cm2 = fx.cluster.node('cm2');
    const s = cm1.subjects;
    const real = cm1.devices.lookup('X2');
    assert.ok(real.registered);
    const cm3 = signedAs(fx.cluster, 'cm3', 'cm3', fx.cluster.node('cm3').boot);
    const raw = fx.cluster.buses.get('cm3')!;
    const fakeBoot = fx.cluster.node('cm3').boot;
    const forged = [
      { op: 'unregister', name: 'X2', pid: real.entry.pid },
      {
        op: 'register',
        entry: {
          name: 'X2',
          kind: 'media_resource',
          type: 'transcoder',
          pid: makePid({ node: 'cm3', kind: 'media_resource', name: 'X2', boot: fakeBoot }),
          node: 'cm3',
          boot: fakeBoot,
        },
      },
      {
        op: 'register',
        entry: {
          name: 'X9',
          kind: 'media_resource',
          type: 'transcoder',
          pid: makePid({ node: 'cm3', kind: 'media_resource', name: 'X9', boot: fakeBoot }),
          node: 'cm3',
          boot: fakeBoot,
        },
      },
      {
        op: 'register',
        entry: {
          name: 'X2',
          kind: 'media_resource',
          type: 'transcoder',
          pid: makePid({ node: 'cm9', kind: 'media_resource', name: 'X2', boot: fakeBoot }),
          node: 'cm9',
          boot: fakeBoot,
        },
      },
    ];
    for (const f of forged) {
      raw.publish(s.registry, encode(f));
      cm3.publish(s.registry, encode(f));
    }
    // A node the config does not know, with a key of its own.
    const cm9 = NodeIdentity.generate('cm9');
    const ring = new NodeKeyring();
    ring.add('cm9', cm9.publicKey);
    const stranger = new SignedBus(fx.cluster.buses.get('cm3')!, {
      identity: cm9,
      keyring: ring,
      boot: fakeBoot,
      onRefused: () => undefined,
    });
    stranger.publish(s.heartbeat, encode({ node: 'cm9', boot: fakeBoot, ts: Date.now() }));
    stranger.publish(s.registry, encode(forged[3]));
    await new Promise((r) => setTimeout(r, 300));
    for (const cm of fx.cluster.nodes.values()) {
      const l = cm.devices.lookup('X2');
      assert.ok(l.registered, `${cm.name} still has X2`);
      assert.equal(l.entry.pid, real.entry.pid, `${cm.name}: X2 still points at cm2`);
      assert.equal(cm.devices.lookup('X9').registered, false);
      assert.equal(cm.liveness.isUp('cm9'), false, `${cm.name} never heard of cm9`);
    }
    const a = await cm1.mrm.allocate({ phone: '1001', type: 'transcoder' });
    assert.equal(a.node, 'cm2');
    assert.equal(a.pid, cm2.localResources()[0]!.pid);
    await a.release();
    const reasons = new Set(
      cm1
        .refusals()
        .filter((r) => r.edge === 'bus' && r.count > 0)
        .map((r) => r.reason),
    );
    for (const r of ['unsigned', 'forged_claim', 'unknown_node'])
      assert.ok(reasons.has(r), `cm1 counted ${r}: ${[...reasons].join(',')}`);
  });

  it('a signed message altered on the way is refused', async () => {
    const cm2 = fx.cluster.node('cm2');
    const x2 = cm2.localResources()[0]!;
    let captured: Uint8Array | undefined;
    const spy = fx.cluster.buses.get('cm3')!;
    const sub = spy.subscribe(cm2.subjects.load, (m) => (captured ??= m.data));
    const a = await fx.cluster.node('cm1').mrm.allocate({ phone: '1001', type: 'transcoder' });
    await eventually(() => captured !== undefined, 1000, 'a signed load report to pass by');
    sub.unsubscribe();
    const tampered = Buffer.from(captured!);
    const at = tampered.length - 3;
    tampered[at] = tampered[at]! ^ 1;
    const before = refused('cm1');
    spy.publish(cm2.subjects.load, tampered);
    await eventually(() => refused('cm1') > before, 1000, 'the tampered report refused');
    assert.ok(
      fx.cluster
        .node('cm1')
        .refusals()
        .some((r) => r.reason === 'bad_signature' && r.count > 0),
    );
    await a.release();
    assert.equal(x2.active, 0);
  });

  it('requests between nodes are sealed: SRTP keys never cross the bus in clear, and a device refuses keys that came unsealed', async () => {
    const cm2 = fx.cluster.node('cm2');
    const cm3 = fx.cluster.node('cm3');
    const x2 = cm2.localResources()[0]!;
    const key = Buffer.alloc(30, 5).toString('base64');
    const media = encode({
      to: x2.pid,
      body: {
        op: 'media',
        allocation_id: 'nope',
        legs: [{ codec: 'PCMU', srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', tx: key } }],
      },
    });
    // What goes on the wire from cm3's connection, as an eavesdropper on NATS would see it.
    const wire: Uint8Array[] = [];
    const raw = fx.cluster.buses.get('cm3')!;
    const tap = {
      ...raw,
      request: (s: string, d: Uint8Array, t: number) => {
        wire.push(d);
        return raw.request(s, d, t);
      },
      serve: raw.serve.bind(raw),
      subscribe: raw.subscribe.bind(raw),
      publish: raw.publish.bind(raw),
      flush: raw.flush.bind(raw),
      link: raw.link.bind(raw),
      close: async () => undefined,
    };
    const opts = {
      identity: fx.cluster.keys!.identities.get('cm3')!,
      keyring: fx.cluster.keys!.keyring,
      boot: cm3.boot,
      targetOf: (s: string) => cm3.subjects.targetNode(s),
      onRefused: () => undefined,
    };
    // Not heard from cm2 yet: a confidential request waits for its key, then fails rather than go in clear.
    const silent = new SignedBus(tap, opts);
    await assert.rejects(silent.request(cm2.subjects.inbox('cm2'), media, 300, { confidential: true }), {
      name: 'ConfidentialChannelError',
    });
    assert.equal(wire.length, 0, 'nothing was sent');
    // Having heard cm2 (the answer to a probe carries its certified key): sealed; the key is not in the bytes; the device takes it (and finds no such allocation).
    await silent.request(cm2.subjects.ping('cm2'), encode({ node: 'cm3', boot: cm3.boot }), 1000);
    const reply = await silent.request(cm2.subjects.inbox('cm2'), media, 1000, { confidential: true });
    assert.match(text(reply), /no allocation nope/);
    assert.equal(wire.length, 2);
    assert.ok(!Buffer.from(wire[1]!).includes(key), 'the SRTP key is not readable on the bus');
    assert.ok(!Buffer.from(wire[1]!).includes('"op":"media"'), 'nor the request');
    // Signed only (a node that does not seal): the device refuses the keys.
    const signedOnly = new SignedBus(tap, opts);
    assert.match(
      text(await signedOnly.request(cm2.subjects.inbox('cm2'), media, 1000)),
      /"code":"forbidden".*came unsealed/,
    );
    assert.ok(Buffer.from(wire[2]!).includes(key), 'that one went in clear: which is why the device refuses it');
  });
});

describe("a node's key is not an operator's authority", () => {
  const fx = useCluster(CONFIG);
  it('configuration changes and drains forwarded with only a node key (or a viewer token) are refused and logged on the target; a device takes a drain only from its own node', async () => {
    const cm2 = fx.cluster.node('cm2');
    const cm3 = fx.cluster.node('cm3');
    const x2 = cm2.localResources()[0]!;
    // cm3's key, sealing like the real cm3 (what an attacker holding cm3's seed can send)
    const bus = new SignedBus(fx.cluster.buses.get('cm3')!, {
      identity: fx.cluster.keys!.identities.get('cm3')!,
      keyring: fx.cluster.keys!.keyring,
      boot: cm3.boot,
      targetOf: (s: string) => cm3.subjects.targetNode(s),
      onRefused: () => undefined,
    });
    // Hears cm2's key as any node does: from the answer to its first probe.
    await bus.request(cm2.subjects.ping('cm2'), encode({ node: 'cm3', boot: cm3.boot }), 1000);
    const control = (body: object) =>
      bus.request(cm2.subjects.nodeControl('cm2'), encode(body), 2000, { confidential: true }).then(text);
    const version = cm2.model.version;
    const parsed = parseConfig(
      CONFIG.replace('"1001": { node: cm1, password: p', '"1001": { node: cm1, password: stolen'),
    );
    assert.ok(parsed.ok);
    const config = parsed.raw;
    assert.match(await control({ op: 'config_apply', config }), /authority/, 'no authority at all: malformed');
    assert.match(
      await control({ op: 'config_apply', config, authority: { token: 'guessed-token-0000000000000000000000' } }),
      /"status":"refused".*no operator token known here/,
    );
    assert.match(
      await control({ op: 'config_apply', config, authority: { token: VIEWER_TOKEN } }),
      /"status":"refused".*is a viewer/,
    );
    assert.match(
      await control({
        op: 'drain',
        device: 'X2',
        draining: true,
        authority: { token: 'guessed-token-0000000000000000000000' },
      }),
      /"error":"drain of X2 refused/,
    );
    // straight to the device process, sealed and signed by cm3
    const direct = await bus.request(
      cm2.subjects.inbox('cm2'),
      encode({ to: x2.pid, body: { op: 'drain', draining: true } }),
      2000,
      { confidential: true },
    );
    assert.match(text(direct), /"code":"forbidden".*only its own node/);
    assert.equal(cm2.model.version, version, 'the configuration is unchanged');
    assert.equal(cm2.model.phones.get('1001')!.password, 'p');
    assert.equal(((await x2.deliver({ op: 'status' })) as { draining?: boolean }).draining, false, 'X2 not drained');
    const refusals = cm2.events.recent(20).filter((e) => e.kind === 'operator_act_refused');
    assert.equal(refusals.length, 3);
    assert.ok(refusals.every((e) => /forwarded by cm3/.test(e.text)));
  });
});
