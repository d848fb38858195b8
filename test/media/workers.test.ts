// Media on worker threads (nodes.<n>.rtp.workers): a node with two media
// workers carries calls on both (each worker its own clock and ports), and
// when one worker dies only its calls are touched: each of its allocations
// is released by its device and reported lost to the caller's node, which
// re-homes the call as it would for a dead node (a new MTP, the phones
// re-INVITEd) while the other worker's calls go on untouched; the dead
// worker is started again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { DEVICE_KINDS } from '../../src/devices/kinds.ts';
import { MEDIA_WORKER_ENTRY } from '../../src/devices/mediaPlanes.ts';
import { MediaWorkers } from '../../src/media/mediaWorkers.ts';
import { createLogger } from '../../src/log.ts';
import { toneShare } from '../helpers/audio.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { SipAgent, sdpMedia, type AgentCall } from '../helpers/sipAgent.ts';

const N = 4;
const TONES = [500, 800, 1100, 1400];

describe('media worker threads', () => {
  let cluster: EmbeddedCluster;
  const sip: Record<string, string> = {};
  const agents: SipAgent[] = [];

  before(async () => {
    const nodes = (await mediaNodes(['cm1', 'cm2'], 43600, 200, sip)).replace(
      /( {2}cm2: .*ports: [0-9-]+)/,
      '$1, workers: 2',
    );
    const phones = Array.from(
      { length: N },
      (_, i) =>
        `  "100${i + 1}": { node: cm1, password: p, device_pool: DP, mtp_required: true }\n  "200${i + 1}": { node: cm2, password: p, device_pool: DP }`,
    ).join('\n');
    cluster = await startCluster(
      `
${nodes}
media_resources:
  MTP2: { type: mtp, node: cm2, capacity: 16 }
  CFB_AUTO2: { type: conference_bridge, node: cm2, capacity: auto }
  CFB_AUTO1: { type: conference_bridge, node: cm1, capacity: auto }
device_pools:
  DP: {}
phones:
${phones}
`,
      { sip: true },
    );
  });
  after(async () => {
    for (const a of agents) a.close();
    await cluster?.stop();
  });

  const agent = async (number: string, node: string) => {
    const a = await SipAgent.open(number, 'p', sip[node]!);
    agents.push(a);
    assert.equal((await a.register()).status, 200);
    return a;
  };
  /** Where the caller's RTP goes now: the SDP of the latest re-INVITE Tandem sent it, else of the answer. */
  const target = (caller: SipAgent, call: AgentCall) => {
    const reinvite = caller.received.filter((r) => r.method === 'INVITE').at(-1);
    return sdpMedia(reinvite ? reinvite.body : call.final.body);
  };
  const talk = async (calls: Array<{ caller: SipAgent; callee: SipAgent; call: AgentCall }>) => {
    const t0 = Date.now();
    await Promise.all(calls.map((c, i) => c.caller.streamTone(target(c.caller, c.call), TONES[i]!, 60)));
    return calls.map((c, i) => toneShare(c.callee.heardSince(t0 + 300), 8000, TONES[i]!));
  };

  it("capacity: auto is the kind's per-core figure times the media threads of the device's node", () => {
    const cap = (node: string, name: string) =>
      cluster
        .node(node)
        .localResources()
        .find((r) => r.name === name)!.capacity;
    assert.equal(cap('cm2', 'CFB_AUTO2'), 2 * 625, 'two workers');
    assert.equal(cap('cm1', 'CFB_AUTO1'), 625, 'no media plane: one');
  });

  it('carries calls on both workers; a worker that dies takes only its calls, which are re-homed; it starts again', async () => {
    const media = cluster.node('cm2').media as MediaWorkers;
    assert.equal(media.threads.length, 2);
    const calls = [];
    for (let i = 1; i <= N; i++) {
      const [caller, callee] = [await agent(`100${i}`, 'cm1'), await agent(`200${i}`, 'cm2')];
      const call = await caller.invite(`200${i}`);
      assert.equal(call.final.status, 200);
      calls.push({ caller, callee, call });
    }
    const before = await media.status();
    assert.deepEqual(
      before.workers!.map((w) => w.sessions),
      [2, 2],
      'sessions spread over both workers',
    );
    for (const [i, share] of (await talk(calls)).entries())
      assert.ok(share > 0.5, `call ${i + 1} carries audio (${share.toFixed(2)})`);
    const allocations = () =>
      cluster
        .node('cm1')
        .sip!.calls.calls()
        .map((c) => c.resources[0]?.allocation);
    const was = allocations();

    await media.threads[0]!.terminate();
    await eventually(
      () => allocations().filter((a, i) => a !== undefined && a !== was[i]).length === 2,
      5000,
      'the two calls of the dead worker to get new MTP allocations',
    );
    assert.equal(
      cluster
        .node('cm1')
        .sip!.calls.calls()
        .filter((c) => c.state === 'up').length,
      N,
      'every call is still up',
    );
    await eventually(
      async () => (await media.status()).workers!.every((w) => w.alive),
      3000,
      'the dead worker to start again',
    );
    const device = cluster
      .node('cm2')
      .localResources()
      .find((r) => r.name === 'MTP2')!;
    assert.equal(device.active, N, 'the lost allocations were released, the replacements taken');
    for (const [i, share] of (await talk(calls)).entries())
      assert.ok(share > 0.5, `call ${i + 1} carries audio after the crash (${share.toFixed(2)})`);
    for (const c of calls) assert.equal((await c.caller.bye(c.call)).status, 200);
    await eventually(() => device.active === 0, 3000, 'every MTP allocation released');
    assert.equal((await media.status()).sessions, 0, 'no session left on either worker');
  });

  it('a device that opens media late (past the request timeout) still carries the call: its node asks again, nothing is opened twice', async () => {
    const media = cluster.node('cm2').media as MediaWorkers;
    const open = media.session.bind(media);
    let slowed = 0;
    // The first session waits 800 ms before it is opened, as a worker still loading or a stalled node would.
    media.session = async (...args) => {
      if (slowed++ === 0) await new Promise((r) => setTimeout(r, 800));
      return open(...args);
    };
    try {
      const [caller, callee] = [await agent('1001', 'cm1'), await agent('2001', 'cm2')];
      const call = await caller.invite('2001');
      assert.equal(call.final.status, 200);
      assert.equal(slowed, 1, 'one session opened for the call');
      const [share] = await talk([{ caller, callee, call }]);
      assert.ok(share! > 0.5, `the call carries audio (${share!.toFixed(2)})`);
      assert.equal((await media.status()).sessions, 1);
      assert.equal((await caller.bye(call)).status, 200);
      await eventually(async () => (await media.status()).sessions === 0, 3000, 'the session closed');
    } finally {
      media.session = open;
    }
  });

  it("a worker that never says how a session's media ended does not hold the release (or the device) up", async () => {
    const media = cluster.node('cm2').media as MediaWorkers;
    const open = media.session.bind(media);
    // The session's final figures never come, as from a worker stuck in a long task.
    media.session = async (...args) => ({ ...(await open(...args)), quality: () => new Promise(() => undefined) });
    try {
      const [caller, callee] = [await agent('1001', 'cm1'), await agent('2001', 'cm2')];
      const call = await caller.invite('2001');
      assert.equal(call.final.status, 200);
      const [share] = await talk([{ caller, callee, call }]);
      assert.ok(share! > 0.5, `the call carries audio (${share!.toFixed(2)})`);
      const device = cluster
        .node('cm2')
        .localResources()
        .find((r) => r.name === 'MTP2')!;
      assert.equal(device.active, 1);
      assert.equal((await caller.bye(call)).status, 200);
      await eventually(() => device.active === 0, 1500, 'the allocation released without the figures');
      await eventually(async () => (await media.status()).sessions === 0, 3000, 'the session closed');
    } finally {
      media.session = open;
    }
  });

  it('a worker that ends before it has loaded fails ready() with a named error', async () => {
    const w = new MediaWorkers({
      entry: MEDIA_WORKER_ENTRY,
      kinds: DEVICE_KINDS,
      count: 1,
      address: '127.0.0.1',
      portMin: 53400,
      portMax: 53419,
      mediaDir: process.cwd(),
      cname: 't',
      latch: 'sdp',
      log: createLogger({ level: 'silent' }),
    });
    await w.threads[0]!.terminate();
    await assert.rejects(w.ready(), /media worker 0 ended \(exit code \d+\) before it was ready/);
    w.close();
  });
});
