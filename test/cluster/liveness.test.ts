// Liveness on its own: heartbeats, restarts, and nodes first heard of through
// a request (whose leases must still be freed if they die before a heartbeat).
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Liveness, type NodeState } from '../../src/cluster/liveness.ts';
import { MemoryBus, MemoryHub } from '../../src/cluster/memoryBus.ts';
import { encode } from '../../src/cluster/codec.ts';
import { isLaterBoot, newBootId } from '../../src/cluster/pid.ts';
import { Subjects } from '../../src/cluster/subjects.ts';
import { silentLogger } from '../../src/log.ts';
import { eventually } from '../helpers/cluster.ts';

const subjects = new Subjects('t');

describe('liveness', () => {
  const started: Liveness[] = [];
  afterEach(() => {
    for (const l of started.splice(0)) l.stop(false);
  });
  const watcher = (hub: MemoryHub) => {
    const l = new Liveness(
      new MemoryBus(hub),
      subjects,
      { node: 'cm1', boot: newBootId(), heartbeatMs: 50, downAfterMs: 200 },
      silentLogger(),
    );
    const events: string[] = [];
    l.on('node_up', (s: NodeState) => events.push(`up ${s.node} ${s.boot}`));
    l.on('node_down', (s: NodeState, why) => events.push(`down ${s.node} ${s.boot} ${why}`));
    l.start();
    started.push(l);
    return { l, events };
  };

  it('boot ids of later starts sort later', async () => {
    const a = newBootId();
    await new Promise((r) => setTimeout(r, 2));
    const b = newBootId();
    assert.ok(isLaterBoot(b, a));
    assert.ok(!isLaterBoot(a, b));
    assert.match(a, /^[a-z0-9]{11}$/);
  });

  it('a node that stalled does not declare its live peers down before reading their heartbeats', async () => {
    const hub = new MemoryHub();
    const { events } = watcher(hub);
    const peer = new Liveness(
      new MemoryBus(hub),
      subjects,
      { node: 'cm2', boot: newBootId(), heartbeatMs: 50, downAfterMs: 200 },
      silentLogger(),
    );
    peer.start();
    started.push(peer);
    await eventually(() => events.some((e) => e.startsWith('up cm2')), 1000, 'cm2 heard');
    // Both stall (one thread): every timer is late, cm2's heartbeats arrive only after cm1's sweep would run.
    const until = Date.now() + 600;
    while (Date.now() < until);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      events.filter((e) => e.startsWith('down')),
      [],
      'cm2 was alive all along',
    );
  });

  it('a node first heard of through a request goes down when no heartbeat follows (the bus has no responder for it)', async () => {
    const { l, events } = watcher(new MemoryHub());
    assert.equal(l.heardFrom('cm2', 'b1'), true);
    assert.equal(l.bootOf('cm2'), 'b1');
    await eventually(() => events.includes('down cm2 b1 gone'), 2000, 'cm2 declared down');
    assert.equal(l.bootOf('cm2'), undefined);
  });

  it('a request from a later start than the one heard marks a restart; one from an earlier start is refused', async () => {
    const hub = new MemoryHub();
    const { l, events } = watcher(hub);
    const other = new MemoryBus(hub);
    const old = '00000000a00';
    const later = '00000000b00';
    other.publish(subjects.heartbeat, encode({ node: 'cm2', boot: old, ts: Date.now() }));
    await eventually(() => l.bootOf('cm2') === old, 1000, 'cm2 up');
    assert.equal(l.heardFrom('cm2', later), true);
    assert.deepEqual(events, [`up cm2 ${old}`, `down cm2 ${old} restarted`, `up cm2 ${later}`]);
    assert.equal(l.heardFrom('cm2', old), false, 'the earlier incarnation is gone');
    // A heartbeat of the earlier start still in flight must not bring it back.
    other.publish(subjects.heartbeat, encode({ node: 'cm2', boot: old, ts: Date.now() }));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(l.bootOf('cm2'), later);
  });

  it('a node that said goodbye is not revived by a late request of the same start', async () => {
    const hub = new MemoryHub();
    const { l } = watcher(hub);
    const other = new MemoryBus(hub);
    other.publish(subjects.heartbeat, encode({ node: 'cm3', boot: 'c1', ts: Date.now() }));
    await eventually(() => l.bootOf('cm3') === 'c1', 1000, 'cm3 up');
    other.publish(subjects.heartbeat, encode({ node: 'cm3', boot: 'c1', ts: Date.now(), leaving: true }));
    await eventually(() => l.bootOf('cm3') === undefined, 1000, 'cm3 gone');
    assert.equal(l.heardFrom('cm3', 'c1'), false);
  });

  it('each node probes one peer a period whatever the size of the cluster; a newcomer learns the cluster from being probed; a killed node is convicted by every peer and no one else is', async () => {
    const hub = new MemoryHub();
    const names = Array.from({ length: 16 }, (_, i) => `cm${i + 1}`);
    let requests = 0;
    let events = 0;
    // Counts what the nodes put on the bus.
    class Counted extends MemoryBus {
      override request(...a: Parameters<MemoryBus['request']>) {
        requests++;
        return super.request(...a);
      }
      override publish(subject: string, data: Uint8Array) {
        events++;
        super.publish(subject, data);
      }
    }
    const nodes = names.map((name) => {
      const bus = new Counted(hub);
      const l = new Liveness(
        bus,
        subjects,
        { node: name, boot: newBootId(), heartbeatMs: 50, downAfterMs: 300, probeTimeoutMs: 100, members: () => names },
        silentLogger(),
      );
      const downs: string[] = [];
      l.on('node_down', (st: NodeState, why) => downs.push(`${st.node} ${why}`));
      started.push(l);
      return { name, bus, l, downs };
    });
    // All but the last start together; the last one joins a running cluster.
    for (const n of nodes.slice(0, -1)) n.l.start();
    const running = nodes.slice(0, -1);
    await eventually(
      () => running.every((n) => running.every((o) => n.l.isUp(o.name))),
      2000,
      'the first 15 see each other',
    );
    const last = nodes.at(-1)!;
    last.l.start();
    await eventually(() => nodes.every((n) => names.every((o) => n.l.isUp(o))), 1000, 'all 16 see each other');
    // Quiet: one probe per node per 50 ms period (sweeps probe only suspects), no announcements.
    requests = 0;
    events = 0;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    const periods = (Date.now() - t0) / 50;
    assert.ok(
      requests <= names.length * (periods + 2),
      `${requests} probes in ${periods.toFixed(0)} periods of 16 nodes`,
    );
    assert.equal(events, 0, 'no announcements while nothing changes');
    // A kill: every other node convicts it (the bus has no responder for it), and no one else.
    const victim = nodes[4]!;
    victim.l.stop(false);
    await victim.bus.close();
    const killedAt = Date.now();
    const others = nodes.filter((n) => n !== victim);
    await eventually(
      () => others.every((n) => n.downs.includes(`${victim.name} gone`)),
      3000,
      'cm5 convicted everywhere',
    );
    assert.ok(Date.now() - killedAt < 1500, `convicted everywhere ${Date.now() - killedAt} ms after the kill`);
    assert.deepEqual(
      others.flatMap((n) => n.downs).filter((d) => !d.startsWith(`${victim.name} `)),
      [],
      'no false downs',
    );
  });

  describe('silence is not death', () => {
    const node = (hub: MemoryHub, name: string, deadAfterMs = 1200) => {
      const bus = new MemoryBus(hub);
      const l = new Liveness(
        bus,
        subjects,
        { node: name, boot: newBootId(), heartbeatMs: 50, downAfterMs: 200, deadAfterMs, probeTimeoutMs: 100 },
        silentLogger(),
      );
      const events: string[] = [];
      l.on('node_up', (s: NodeState) => events.push(`up ${s.node}`));
      l.on('node_unreachable', (s: NodeState) => events.push(`unreachable ${s.node}`));
      l.on('node_reachable', (s: NodeState) => events.push(`reachable ${s.node}`));
      l.on('node_down', (s: NodeState, why) => events.push(`down ${s.node} ${why}`));
      l.on('isolated', (cut) => events.push(cut ? 'isolated' : 'joined'));
      l.start();
      started.push(l);
      return { bus, l, events };
    };
    const allUp = (ls: Liveness[], names: string[]) => ls.every((l) => names.every((n) => l.isUp(n)));

    it('a peer cut off for longer than node_down_after_ms is unreachable, not down; heard again it is reachable, and nothing was convicted on either side', async () => {
      const hub = new MemoryHub();
      const a = node(hub, 'cm1');
      const b = node(hub, 'cm2');
      await eventually(() => allUp([a.l, b.l], ['cm1', 'cm2']), 1000, 'both up');
      b.bus.partitioned = true;
      await eventually(
        () => a.events.includes('unreachable cm2') && b.events.includes('unreachable cm1'),
        1000,
        'each sees the other unreachable',
      );
      assert.equal(a.l.statusOf('cm2'), 'unreachable');
      assert.equal(a.l.liveBootOf('cm2') !== undefined, true, 'what cm2 holds is still its own');
      // Two nodes that hear no one: each may be the one cut off, so neither convicts past node_dead_after_ms.
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok(a.l.isolated && b.l.isolated);
      b.bus.partitioned = false;
      await eventually(
        () => a.events.includes('reachable cm2') && b.events.includes('reachable cm1'),
        1000,
        'reachable again',
      );
      assert.deepEqual(
        [...a.events, ...b.events].filter((e) => e.startsWith('down')),
        [],
      );
      assert.ok(!a.l.isolated && !b.l.isolated);
    });

    it('a peer whose connection is gone (no responders) is down within a probe; a silent one, while the others are heard, only past node_dead_after_ms', async () => {
      const hub = new MemoryHub();
      const a = node(hub, 'cm1');
      const b = node(hub, 'cm2');
      const c = node(hub, 'cm3');
      await eventually(() => allUp([a.l, b.l, c.l], ['cm1', 'cm2', 'cm3']), 1000, 'all up');
      // cm3 is partitioned (its bus is silent but still "connected"): unreachable for cm1 until node_dead_after_ms.
      c.bus.partitioned = true;
      const cutAt = Date.now();
      await eventually(() => a.events.includes('unreachable cm3'), 1000, 'cm3 unreachable');
      assert.ok(!a.events.some((e) => e.startsWith('down cm3')), 'not convicted on silence alone');
      await eventually(() => a.events.includes('down cm3 timeout'), 3000, 'cm3 convicted past node_dead_after_ms');
      assert.ok(
        Date.now() - cutAt >= 1200 - 60,
        'not before node_dead_after_ms (counted from the last heartbeat heard)',
      );
      // cm3 hears no one: it convicts nobody.
      assert.ok(c.l.isolated);
      assert.ok(!c.events.some((e) => e.startsWith('down')), `cm3 convicted no one: ${c.events.join(', ')}`);
      // cm2 killed (its connection closed): the bus has no responder for it, so it is down at once.
      const killedAt = Date.now();
      b.l.stop(false);
      await b.bus.close();
      await eventually(() => a.events.includes('down cm2 gone'), 2000, 'cm2 convicted by the bus');
      assert.ok(Date.now() - killedAt < 800, `down after ${Date.now() - killedAt} ms`);
    });

    it('"no responders" convicts only when it persists: a peer whose connection drops and comes straight back (a reconnect) is not declared down; one that stays away is', async () => {
      const hub = new MemoryHub();
      const a = new Liveness(
        new MemoryBus(hub),
        subjects,
        { node: 'cm1', boot: newBootId(), heartbeatMs: 100, downAfterMs: 1000, probeTimeoutMs: 200 },
        silentLogger(),
      );
      const events: string[] = [];
      a.on('node_down', (s: NodeState, why) => events.push(`down ${s.node} ${why}`));
      a.on('node_unreachable', (s: NodeState) => events.push(`unreachable ${s.node}`));
      a.start();
      started.push(a);
      // A peer by hand: an announcement and a ping responder that come and go as its connection does.
      const peer = new MemoryBus(hub);
      let ping: { unsubscribe(): void } | undefined;
      const connect = () => {
        ping = peer.serve(subjects.ping('cm2'), () => encode({ node: 'cm2', boot: 'b1' }));
      };
      const drop = () => ping?.unsubscribe();
      connect();
      peer.publish(subjects.heartbeat, encode({ node: 'cm2', boot: 'b1', ts: Date.now() }));
      try {
        await eventually(() => a.isUp('cm2'), 1000, 'cm2 up');
        // cm1's own link must have been up for node_down_after_ms before "no responders" means anything.
        await new Promise((r) => setTimeout(r, 1000));
        // The server drops cm2's connection; it reconnects 300 ms later (less than the confirmation, node_down_after_ms).
        drop();
        await new Promise((r) => setTimeout(r, 300));
        connect();
        await new Promise((r) => setTimeout(r, 600));
        assert.equal(events.join(', '), '', 'a reconnect is neither a death nor a silence');
        // Gone for good: convicted once "no responders" has lasted the confirmation time.
        drop();
        const goneAt = Date.now();
        await eventually(() => events.includes('down cm2 gone'), 3000, 'cm2 convicted by the bus');
        const took = Date.now() - goneAt;
        assert.ok(
          took >= 1000 && took < 1600,
          `down after ${took} ms (node_down_after_ms of no responders, probed every 50 ms)`,
        );
        assert.deepEqual(events, ['down cm2 gone'], 'proof of death needs no silence first');
      } finally {
        drop();
        await peer.close();
      }
    });
  });
});
