// The production shape: a real nats-server and three call managers, each in
// its own OS process (`tandem start --node cmX`), driven through their admin
// APIs. Crashes are kill -9; the NATS outage is a SIGKILLed server.
import { adminFetch, withTestAdmin } from '../helpers/admin.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { connect, headers, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { eventually } from '../helpers/cluster.ts';
import { INTRUDER, NatsServer } from '../helpers/natsServer.ts';
import { freePort } from '../helpers/ports.ts';
import { startNodeProcess } from '../helpers/nodeProcess.ts';
import { start, type Proc } from '../helpers/proc.ts';

const HEARTBEAT_MS = 250;
const DOWN_AFTER_MS = 1500;
const TIMEOUT_MS = 400;
/** a silent node that is not proven gone (a stall, a partition) is declared down only after this */
const DEAD_AFTER_MS = 5000;
// Liveness time plus a heartbeat and scheduling slack on a shared 2-core machine.
const LIVENESS_BUDGET_MS = DOWN_AFTER_MS + 2 * HEARTBEAT_MS + 1500;

type Json = Record<string, unknown>;
interface Step {
  device: string;
  verdict: string;
  node?: string;
}
interface Allocation {
  id: string;
  resource: string;
  node: string;
  pid: string;
  trace: { steps: Step[] };
}

async function configFile(natsUrl: string): Promise<{ file: string; admin: Record<string, string> }> {
  const admin: Record<string, string> = {};
  let nodes = '';
  for (const n of ['cm1', 'cm2', 'cm3']) {
    admin[n] = `http://127.0.0.1:${await freePort()}`;
    nodes += `  ${n}: { sip: "127.0.0.1:${await freePort()}", admin: "${admin[n]!.slice(7)}" }\n`;
  }
  const yaml = `
cluster:
  name: natstest
  bus: ${natsUrl}
  request_timeout_ms: ${TIMEOUT_MS}
  heartbeat_ms: ${HEARTBEAT_MS}
  node_down_after_ms: ${DOWN_AFTER_MS}
  node_dead_after_ms: ${DEAD_AFTER_MS}
nodes:
${nodes}
media_resources:
  XC3: { type: transcoder, node: cm3, capacity: 4, codecs: [PCMU, PCMA] }
  XC2: { type: transcoder, node: cm2, capacity: 4, codecs: [PCMU, PCMA] }
  CF3: { type: conference_bridge, node: cm3, capacity: 8 }
media_resource_groups:
  G: { devices: [XC3, XC2, CF3] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: p1, device_pool: DP }
  "2001": { node: cm2, password: p2, device_pool: DP }
`;
  const file = join(mkdtempSync(join(tmpdir(), 'tandem-nats-test-')), 'cluster.yaml');
  writeFileSync(file, withTestAdmin(yaml));
  return { file, admin };
}

describe('cluster over NATS, one process per call manager', () => {
  let nats: NatsServer;
  let cfg: { file: string; admin: Record<string, string> };
  const procs = new Map<string, Proc>();
  let client: NatsConnection;

  const startNode = async (name: string) => {
    const p = await startNodeProcess(cfg.file, name);
    procs.set(name, p);
    return p;
  };
  const api = async (
    node: string,
    path: string,
    init?: RequestInit,
  ): Promise<{ status: number; body: Json & Json[] }> => {
    const res = await adminFetch(cfg.admin[node] + path, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json & Json[] };
  };
  const allocate = async (node: string, phone: string, type = 'transcoder') => {
    const t0 = Date.now();
    const r = await api(node, '/api/allocations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone, type }),
    });
    return { ...r, ms: Date.now() - t0, alloc: r.body as unknown as Allocation };
  };
  const resource = async (node: string, name: string) =>
    (await api(node, '/api/resources')).body.find((r) => r.name === name)!;
  const registeredEverywhere = async (device: string, pidPrefix: string, nodes: string[]) => {
    for (const n of nodes) {
      const r = await resource(n, device).catch(() => undefined);
      if (r?.registered !== true || !String(r.pid).startsWith(pidPrefix)) return false;
    }
    return true;
  };

  before(async () => {
    nats = await NatsServer.prepare();
    cfg = await configFile(nats.url);
    await nats.startSecured(cfg.file);
    await Promise.all(['cm1', 'cm2', 'cm3'].map(startNode));
    client = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100, ...INTRUDER });
    await eventually(
      () => registeredEverywhere('XC3', 'cm3/', ['cm1', 'cm2', 'cm3']),
      10_000,
      'XC3 registered on every node',
    );
    // (the fallback device too: the kill test needs every node to know both)
    await eventually(
      () => registeredEverywhere('XC2', 'cm2/', ['cm1', 'cm2', 'cm3']),
      10_000,
      'XC2 registered on every node',
    );
  });
  /**
   * What every test starts from: the three nodes running, each node's devices
   * registered on every node. A test that kills a node need not restart it;
   * the next test's start does (so any test runs alone, and in any order).
   */
  beforeEach(async () => {
    for (const n of ['cm1', 'cm2', 'cm3']) {
      const p = procs.get(n);
      if (!p || p.child.exitCode !== null || p.child.signalCode !== null) await startNode(n);
    }
    await eventually(
      async () =>
        (await registeredEverywhere('XC3', 'cm3/', ['cm1', 'cm2', 'cm3'])) &&
        (await registeredEverywhere('XC2', 'cm2/', ['cm1', 'cm2', 'cm3'])),
      LIVENESS_BUDGET_MS + 10_000,
      'every node up, every device registered everywhere',
    );
  });
  after(async () => {
    for (const p of procs.values()) p.kill('SIGKILL');
    await client?.close();
    await nats?.stop();
  });

  it('a phone on cm1 allocates a device on cm3 through cm3’s device process; cm3 shows it; release frees it', async () => {
    const a = await allocate('cm1', '1001');
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal(a.alloc.resource, 'XC3');
    assert.equal(a.alloc.node, 'cm3');
    assert.match(a.alloc.pid, /^cm3\/media_resource\/XC3~/);
    // (the walk's first step summarizes the group's conference bridge as wrong_type)
    assert.deepEqual(
      a.alloc.trace.steps.filter((s) => s.device).map((s) => [s.device, s.verdict]),
      [['XC3', 'allocated']],
    );
    const seen = await resource('cm3', 'XC3');
    assert.equal(seen.active, 1);
    assert.equal(seen.available, 3);
    assert.equal((await api('cm1', `/api/allocations/${a.alloc.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await resource('cm3', 'XC3')).active, 0);
  });

  it('kill -9 of the first device’s node: allocations move to the next device within the liveness time, none waits past the timeout', async () => {
    const before = await resource('cm1', 'XC3');
    procs.get('cm3')!.kill('SIGKILL');
    await procs.get('cm3')!.exited();
    const killedAt = Date.now();
    const got: string[] = [];
    // Keep allocating while the cluster notices: no request may hang.
    let moved = -1;
    while (Date.now() - killedAt < LIVENESS_BUDGET_MS + 2000) {
      const a = await allocate('cm1', '1001');
      assert.ok(a.ms < TIMEOUT_MS + 600, `allocation took ${a.ms} ms (timeout ${TIMEOUT_MS})`);
      // (on failure, what the nodes said: liveness decisions are logged at warn)
      if (a.status !== 201) {
        const nodes = JSON.stringify((await api('cm1', '/api/nodes')).body);
        await new Promise((r) => setTimeout(r, 500)); // (the nodes' logs go through a transport thread)
        assert.fail(
          `${JSON.stringify(a.body)}\n--- cm1's nodes: ${nodes}\n--- cm1:\n${procs.get('cm1')!.output().slice(-2500)}\n--- cm2:\n${procs.get('cm2')!.output().slice(-2500)}`,
        );
      }
      got.push(a.alloc.resource);
      await api('cm1', `/api/allocations/${a.alloc.id}`, { method: 'DELETE' });
      const xc3 = a.alloc.trace.steps.find((s) => s.device === 'XC3');
      if (a.alloc.resource === 'XC2' && xc3?.verdict === 'not_registered') {
        moved = Date.now() - killedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(
      moved >= 0 && moved <= LIVENESS_BUDGET_MS,
      `XC3 never became not_registered (${moved} ms; got ${got.join(',')})`,
    );
    assert.ok(
      got.every((r) => r === 'XC2'),
      `no allocation may land on the dead node: ${got.join(',')}`,
    );
    assert.equal(before.registered, true);
    const nodes = (await api('cm1', '/api/nodes')).body;
    assert.equal(nodes.find((n) => n.name === 'cm3')!.up, false);
    // Proven gone by the bus (no responders for its subjects), not merely silent: declared down, not only suspected.
    await eventually(
      async () => (await api('cm1', '/api/nodes')).body.find((n) => n.name === 'cm3')?.state === 'down',
      1000,
      'cm3 down on cm1',
    );
    assert.match(
      procs.get('cm1')!.output(),
      /"reason":"gone"[^\n]*"msg":"node down"|"msg":"node down"[^\n]*"reason":"gone"/,
    );
  });

  it('a restarted node’s devices are back in the mapping table on every node, with new PIDs', async () => {
    const oldPid = String((await resource('cm1', 'XC3')).pid);
    const old = procs.get('cm3')!;
    old.kill('SIGKILL');
    await old.exited();
    await startNode('cm3');
    await eventually(
      () => registeredEverywhere('XC3', 'cm3/', ['cm1', 'cm2', 'cm3']),
      LIVENESS_BUDGET_MS,
      'XC3 back on every node',
    );
    for (const n of ['cm1', 'cm2']) assert.notEqual((await resource(n, 'XC3')).pid, oldPid);
    const a = await allocate('cm1', '1001');
    assert.equal(a.alloc.resource, 'XC3');
    await api('cm1', `/api/allocations/${a.alloc.id}`, { method: 'DELETE' });
  });

  it('kill -9 of a requesting node: the device reclaims its allocations within the liveness time', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await allocate('cm2', '2001')).alloc.resource, 'XC3');
    assert.equal((await resource('cm3', 'XC3')).active, 3);
    procs.get('cm2')!.kill('SIGKILL');
    await procs.get('cm2')!.exited();
    const took = await eventually(
      async () => (await resource('cm3', 'XC3')).active === 0,
      LIVENESS_BUDGET_MS,
      'XC3 reclaimed',
    );
    assert.ok(
      took >= DOWN_AFTER_MS - 2 * HEARTBEAT_MS,
      `reclaimed after ${took} ms: before the node could be declared down`,
    );
    await startNode('cm2');
    await eventually(() => registeredEverywhere('XC2', 'cm2/', ['cm1', 'cm3']), LIVENESS_BUDGET_MS, 'cm2 back');
  });

  it('nats-server restarted under the nodes: they reconnect, the mapping table watch resumes, allocations work', async () => {
    await nats.down();
    await new Promise((r) => setTimeout(r, 500));
    await nats.up();
    // Allocation across nodes works again once everyone has reconnected.
    await eventually(
      async () => {
        const a = await allocate('cm1', '1001').catch(() => undefined);
        if (a?.status !== 201) return false;
        await api('cm1', `/api/allocations/${a.alloc.id}`, { method: 'DELETE' });
        return a.alloc.resource === 'XC3';
      },
      15_000,
      'cross-node allocation after the NATS restart',
    );
    // The watch survived: a restart of cm2 (new PIDs) reaches cm1 and cm3 through the bucket.
    const oldPid = String((await resource('cm1', 'XC2')).pid);
    procs.get('cm2')!.kill('SIGKILL');
    await procs.get('cm2')!.exited();
    await startNode('cm2');
    await eventually(
      async () =>
        (await registeredEverywhere('XC2', 'cm2/', ['cm1', 'cm3'])) &&
        String((await resource('cm1', 'XC2')).pid) !== oldPid,
      LIVENESS_BUDGET_MS + 5000,
      'new XC2 PID seen by cm1 and cm3',
    );
  });

  it('malformed, unsigned and foreign messages on the cluster subjects and in the bucket are refused with a log line; every node stays up', async () => {
    const garbage = [
      new TextEncoder().encode('not json{'),
      new TextEncoder().encode('{"op":"allocate"}'),
      new Uint8Array([0xff, 0, 7]),
    ];
    const subjects = [
      'tandem.natstest.heartbeat',
      'tandem.natstest.load',
      'tandem.natstest.registry',
      'tandem.natstest.node.cm3.inbox',
      'tandem.natstest.node.cm3.control',
    ];
    for (const s of subjects) for (const g of garbage) client.publish(s, g);
    // Requests get an answer or nothing, never a crash.
    for (const g of garbage)
      await client.request('tandem.natstest.node.cm3.inbox', g, { timeout: 1000 }).catch(() => undefined);
    const kv = await new Kvm(client).open('tandem_natstest_devices');
    await kv.put('devices.cm3', new TextEncoder().encode('{"name":"BOGUS"}'));
    await client.flush();
    await eventually(
      () => /mapping table entry.*\n?.*|"reason":"mapping_table"/.test(procs.get('cm1')!.output()),
      5000,
      'cm1 to log the bad entry',
    );
    assert.match(
      procs.get('cm3')!.output(),
      /bus message refused.*"reason":"unsigned"|"reason":"unsigned".*bus message refused/,
    );
    for (const n of ['cm1', 'cm2', 'cm3']) assert.equal((await api(n, '/healthz')).status, 200);
    const a = await allocate('cm1', '1001');
    assert.equal(a.status, 201);
    assert.equal(a.alloc.resource, 'XC3');
    await api('cm1', `/api/allocations/${a.alloc.id}`, { method: 'DELETE' });
  });

  it('nats-server refuses strangers; a node reads only its own inbox and replies', async () => {
    await assert.rejects(connect({ servers: nats.url, reconnect: false }), /Authorization Violation/i);
    await assert.rejects(
      connect({ servers: nats.url, reconnect: false, user: 'intruder', pass: 'guess' }),
      /Authorization Violation/i,
    );
    // With cm3's own key (a stolen machine): it cannot read cm1's requests or its replies.
    const seed = readFileSync(join(dirname(cfg.file), '.tandem', 'natstest-keys', 'cm3.seed'));
    const nc3 = await connect({
      servers: nats.url,
      reconnect: false,
      authenticator: nkeyAuthenticator(new Uint8Array(seed)),
      inboxPrefix: '_INBOX_cm3',
    });
    const violations: string[] = [];
    void (async () => {
      for await (const st of nc3.status())
        if (st.type === 'error') violations.push(String((st as { error?: Error }).error?.message ?? st.type));
    })();
    nc3.subscribe('tandem.natstest.node.cm1.inbox', { callback: (err) => void (err && violations.push(err.message)) });
    nc3.subscribe('_INBOX_cm1.>', { callback: (err) => void (err && violations.push(err.message)) });
    await nc3.flush();
    await eventually(
      () => violations.filter((v) => /permissions violation/i.test(v)).length >= 2,
      5000,
      'two permission violations',
    );
    await nc3.close();
  });

  it('an intruder on NATS cannot evict a node, free or steal leases, or delete mapping-table entries', async () => {
    const before = await resource('cm1', 'XC3');
    assert.equal(before.registered, true);
    const boots = Object.fromEntries((await api('cm1', '/api/nodes')).body.map((n) => [n.name, n.boot]));
    const a = await allocate('cm1', '1001');
    assert.equal(a.alloc.resource, 'XC3');
    // a forged goodbye of cm3, forged releases and allocations in cm1's name, a raw delete of XC3's entry
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    client.publish('tandem.natstest.heartbeat', enc({ node: 'cm3', boot: boots.cm3, ts: Date.now(), leaving: true }));
    await client
      .request(
        'tandem.natstest.node.cm3.inbox',
        enc({ to: a.alloc.pid, body: { op: 'release', allocation_id: a.alloc.id } }),
        { timeout: 1000 },
      )
      .catch(() => undefined);
    for (let i = 0; i < 8; i++) {
      const body = {
        op: 'allocate',
        allocation_id: `steal-${i}`,
        requester: { node: 'cm1', boot: boots.cm1 },
        phone: '1001',
        type: 'transcoder',
      };
      await client
        .request('tandem.natstest.node.cm3.inbox', enc({ to: a.alloc.pid, body }), { timeout: 1000 })
        .catch(() => undefined);
    }
    const kv = await new Kvm(client).open('tandem_natstest_devices');
    await kv.delete('devices.cm3');
    await new Promise((r) => setTimeout(r, DOWN_AFTER_MS + 500));
    const xc3 = await resource('cm3', 'XC3');
    assert.equal(xc3.active, 1, 'the lease is intact, nothing stolen');
    for (const n of ['cm1', 'cm2']) {
      const nodes = (await api(n, '/api/nodes')).body;
      assert.equal(nodes.find((x) => x.name === 'cm3')!.up, true, `cm3 still up for ${n}`);
      assert.equal((await resource(n, 'XC3')).registered, true, `${n} still sees XC3`);
    }
    // The owner wrote its entry back.
    const entry = await kv.get('devices.cm3');
    assert.equal(entry?.operation, 'PUT');
    assert.match(procs.get('cm3')!.output(), /changed by someone else; restoring it/);
    assert.equal((await api('cm1', `/api/allocations/${a.alloc.id}`, { method: 'DELETE' })).status, 204);
  });

  it('a device entry with a forged signature changes nothing: allocations go to the real device, and its owner writes it back', async () => {
    const before = await resource('cm1', 'XC3');
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const kv = await new Kvm(client).open('tandem_natstest_devices');
    // cm3's device list from a start of cm3 that never happened (taken, it would make XC3 look stale everywhere),
    // with a signature that is not cm3's. (Readers check a list when they first use one of its devices: the
    // check that refuses it is test/cluster/deviceManager.test.ts; here cm3 also writes its own back at once.)
    const boot = 'zzzzzzzzzzz';
    const real = JSON.parse(JSON.parse(new TextDecoder().decode((await kv.get('devices.cm3'))!.value)).e) as {
      devices: Array<{ name: string; pid: string }>;
    };
    assert.ok(real.devices.some((d) => d.name === 'XC3'));
    const forged = {
      node: 'cm3',
      boot,
      devices: real.devices.map((d) => ({ ...d, pid: d.pid.replace(/~.*$/, `~${boot}`) })),
    };
    await kv.put('devices.cm3', enc({ e: JSON.stringify(forged), s: 'A'.repeat(86) }));
    await client.flush();
    for (const wait of [0, 1000]) {
      await new Promise((r) => setTimeout(r, wait));
      const a = await allocate('cm1', '1001');
      try {
        assert.equal(a.status, 201);
        assert.equal(a.alloc.pid, before.pid, 'the allocation went to the real XC3');
      } finally {
        await api('cm1', `/api/allocations/${a.alloc.id}`, { method: 'DELETE' });
      }
    }
    assert.equal(
      JSON.parse(new TextDecoder().decode((await kv.get('devices.cm3'))!.value)).e.includes(boot),
      false,
      'cm3 wrote its list back',
    );
  });

  it('one publish cannot wipe the mapping table: its stream refuses rollups, purges and deletes, to a node key and to a NATS admin', async () => {
    const bucket = 'tandem_natstest_devices';
    const kv = await new Kvm(client).open(bucket);
    const keys = async () => {
      const out: string[] = [];
      for await (const k of await kv.keys()) out.push(k);
      return out.sort();
    };
    const full = await keys();
    assert.ok(full.length >= 4, `the table holds ${full.join(', ')}`);
    // With cm1's own key and NATS user (a stolen machine): the server refuses the rollup.
    const seed = readFileSync(join(dirname(cfg.file), '.tandem', 'natstest-keys', 'cm1.seed'));
    const nc1 = await connect({
      servers: nats.url,
      reconnect: false,
      authenticator: nkeyAuthenticator(new Uint8Array(seed)),
      inboxPrefix: '_INBOX_cm1',
    });
    const rollup = () => {
      const h = headers();
      h.set('Nats-Rollup', 'all');
      return jetstream(nc1).publish(`$KV.${bucket}.numbers.1001`, new TextEncoder().encode('{}'), { headers: h });
    };
    await assert.rejects(rollup(), /rollup/i);
    // Nor may it write another node's device entries at all: the server refuses before any signature is checked.
    await assert.rejects(
      jetstream(nc1).publish(`$KV.${bucket}.devices.cm3`, new TextEncoder().encode('{}'), { timeout: 2000 }),
      /permissions violation|timeout|no responders/i,
    );
    assert.match(
      new TextDecoder().decode((await kv.get('devices.cm3'))!.value),
      /^\{"e":.*"s":"/,
      "cm3's device list is still its signed one",
    );
    await assert.rejects(
      jetstreamManager(nc1).then((m) => m.streams.purge(`KV_${bucket}`)),
      /permissions violation|timeout/i,
    );
    assert.deepEqual(await keys(), full, 'nothing removed');
    const jsm = await jetstreamManager(client);
    const stream = `KV_${bucket}`;
    assert.deepEqual(
      (({ allow_rollup_hdrs, deny_delete, deny_purge }) => ({ allow_rollup_hdrs, deny_delete, deny_purge }))(
        (await jsm.streams.info(stream)).config,
      ),
      { allow_rollup_hdrs: false, deny_delete: true, deny_purge: true },
    );
    // Even the NATS admin cannot turn that back on: deny_purge is final.
    await assert.rejects(
      jsm.streams.update(stream, { allow_rollup_hdrs: true, deny_purge: false }),
      /can not cancel deny purge/,
    );
    await nc1.close();
  });

  it('a stalled node is suspected, not convicted, until node_dead_after_ms; declared down then, it learns it: what the device reclaimed is reported lost on the holder', async () => {
    const a = await allocate('cm1', '1001');
    assert.equal(a.alloc.resource, 'XC3');
    const cm1 = procs.get('cm1')!;
    cm1.kill('SIGSTOP');
    const stoppedAt = Date.now();
    try {
      // Its connection to NATS stays open (the kernel keeps it): no proof it is gone, so it is only unreachable.
      await eventually(
        async () => (await api('cm3', '/api/nodes')).body.find((n) => n.name === 'cm1')?.state === 'unreachable',
        LIVENESS_BUDGET_MS,
        'cm3 to suspect cm1',
      );
      assert.equal((await resource('cm3', 'XC3')).active, 1, 'the lease of a node only suspected is kept');
      await eventually(
        async () => (await resource('cm3', 'XC3')).active === 0,
        DEAD_AFTER_MS + LIVENESS_BUDGET_MS,
        "cm3 to reclaim the stalled node's lease",
      );
      assert.ok(
        Date.now() - stoppedAt >= DEAD_AFTER_MS - HEARTBEAT_MS,
        `reclaimed ${Date.now() - stoppedAt} ms after the stall: before node_dead_after_ms`,
      );
    } finally {
      cm1.kill('SIGCONT');
    }
    await eventually(
      async () => (await api('cm1', '/api/allocations')).body.length === 0,
      10_000,
      'cm1 to report its allocation lost',
    );
    await eventually(
      () => /this node stalled/.test(cm1.output()) && /"msg":"allocation lost/.test(cm1.output()),
      3000,
      'the stall and the loss in the log',
    );
    // and the cluster works as before
    await eventually(
      async () => (await allocate('cm1', '1001').catch(() => undefined))?.status === 201,
      10_000,
      'allocations again',
    );
    for (const x of (await api('cm1', '/api/allocations')).body)
      await api('cm1', `/api/allocations/${String(x.id)}`, { method: 'DELETE' });
  });

  it('a node refuses to join NATS without credentials unless --insecure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-nokeys-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      withTestAdmin(
        `cluster: { name: nokeys, bus: "${nats.url}" }\nnodes:\n  cm1: { sip: "127.0.0.1:${await freePort()}", admin: "127.0.0.1:${await freePort()}" }\n`,
      ),
    );
    const p = start('node', ['--import', 'tsx', 'src/cli.ts', 'start', '-c', file]);
    assert.equal(await p.exited(), 1);
    assert.match(p.output(), /refusing to join .* without credentials/);
  });
});
