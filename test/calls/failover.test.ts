// Failover of the media plane: the node hosting a call's transcoder dies in
// the middle of the call; the caller's node takes the next transcoder of the
// MRGL, moves both phones' media to it, and the audio comes back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { toneShare, writeToneWav } from '../helpers/audio.ts';
import { Baresip } from '../helpers/baresip.ts';
import { VIEWER_TOKEN, adminFetch } from '../helpers/admin.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { SipAgent } from '../helpers/sipAgent.ts';

describe('a call survives the death of its transcoder’s node', () => {
  let cluster: EmbeddedCluster;
  const sip: Record<string, string> = {};
  let caller: Baresip | undefined;
  let callee: SipAgent | undefined;

  before(async () => {
    const nodes = await mediaNodes(['cm1', 'cm2', 'cm3'], 43000, 1000, sip);
    cluster = await startCluster(
      `
cluster: { heartbeat_ms: 100, node_down_after_ms: 500 }
${nodes}
media_resources:
  XC3: { type: transcoder, node: cm3, capacity: 4, codecs: [PCMU, PCMA] }
  XC2: { type: transcoder, node: cm2, capacity: 4, codecs: [PCMU, PCMA] }
media_resource_groups:
  G: { devices: [XC3, XC2] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: a, device_pool: DP, codecs: [PCMU] }
  "2002": { node: cm2, password: b, device_pool: DP, codecs: [PCMA] }
`,
      { sip: true, admin: true },
    );
  });
  after(async () => {
    await caller?.stop();
    callee?.close();
    await cluster.stop();
  });

  it('transcoder on cm3, cm3 dies, the call moves to the transcoder on cm2 and carries audio again', async () => {
    caller = await Baresip.start({ number: '1001', password: 'a', registrar: sip.cm1!, toneHz: 440 });
    callee = await SipAgent.open('2002', 'b', sip.cm2!);
    callee.codecs = [8];
    assert.equal((await caller.registration()).status, 200);
    assert.equal((await callee.register()).status, 200);
    await caller.dial('2002');
    await caller.waitEvent('CALL_ESTABLISHED', 10_000);
    const transcoder = () =>
      cluster
        .node('cm1')
        .sip!.calls.calls()[0]
        ?.resources.find((r) => r.type === 'transcoder')?.resource;
    assert.equal(transcoder(), 'XC3');
    const hears440 = () => toneShare(callee!.heardSince(Date.now() - 700), 8000, 440);
    await eventually(() => hears440() > 0.5, 3000, 'the callee to hear the caller through XC3');

    await cluster.crash('cm3');
    const took = await eventually(() => transcoder() === 'XC2', 5000, 'the call to move to XC2');
    assert.ok(took < 3000, `re-homed after ${took} ms`);
    await eventually(
      () => callee!.received.filter((r) => r.method === 'INVITE').length >= 2,
      2000,
      'the callee to be re-INVITEd to the new transcoder',
    );
    await eventually(() => hears440() > 0.5, 4000, 'the callee to hear the caller again, through XC2');
    assert.equal(cluster.node('cm1').sip!.calls.calls()[0]!.state, 'up');

    // The admin API cannot cut the call's transcoder: 409 naming the call, 403 for a viewer;
    // an operator who forces it gets the call re-homed (here onto XC2 again), never a call without media.
    const half = cluster.node('cm1').sip!.calls.calls()[0]!;
    const xc = half.resources.find((r) => r.type === 'transcoder')!;
    const url = `${cluster.node('cm1').admin!.url}/api/allocations/${xc.allocation}`;
    const conflict = await adminFetch(url, { method: 'DELETE' });
    assert.equal(conflict.status, 409);
    assert.match(((await conflict.json()) as { error: string }).error, new RegExp(`call ${half.call}`));
    assert.equal((await adminFetch(`${url}?force=true`, { method: 'DELETE' }, VIEWER_TOKEN)).status, 403);
    assert.equal((await adminFetch(`${url}?force=true`, { method: 'DELETE' })).status, 204);
    const newAllocation = () =>
      cluster
        .node('cm1')
        .sip!.calls.calls()[0]
        ?.resources.find((r) => r.type === 'transcoder')?.allocation;
    await eventually(
      () => newAllocation() !== undefined && newAllocation() !== xc.allocation,
      3000,
      'the call to take a new transcoder allocation',
    );
    await eventually(() => hears440() > 0.5, 4000, 'the callee to hear the caller again after the forced release');
    assert.equal(cluster.node('cm1').sip!.calls.calls()[0]!.state, 'up');
    await caller.command('hangup');
    await eventually(() => cluster.node('cm2').localResources()[0]!.active === 0, 3000, 'XC2 released');
  });
});

describe('music on hold survives the death of its node', () => {
  let cluster: EmbeddedCluster;
  const sip: Record<string, string> = {};
  let caller: Baresip | undefined;
  let heldParty: SipAgent | undefined;

  before(async () => {
    const moh = join(mkdtempSync(join(tmpdir(), 'tandem-moh-fo-')), 'moh.wav');
    writeToneWav(moh, 600, 5);
    const nodes = await mediaNodes(['cm1', 'cm2', 'cm3'], 46000, 300, sip);
    cluster = await startCluster(
      `
media_dir: "${dirname(moh)}"
cluster: { heartbeat_ms: 100, node_down_after_ms: 500 }
${nodes}
media_resources:
  MOH3: { type: moh, node: cm3, capacity: 4, audio_sources: { "1": "${moh}" } }
  MOH1: { type: moh, node: cm1, capacity: 4, audio_sources: { "1": "${moh}" } }
media_resource_groups:
  G: { devices: [MOH3, MOH1] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: a, device_pool: DP }
  "2001": { node: cm2, password: b, device_pool: DP }
`,
      { sip: true, admin: true },
    );
  });
  after(async () => {
    await caller?.stop();
    heldParty?.close();
    await cluster.stop();
  });

  it('the held phone hears MOH from cm3; cm3 dies; it hears MOH from cm1', async () => {
    caller = await Baresip.start({ number: '1001', password: 'a', registrar: sip.cm1!, toneHz: 440 });
    heldParty = await SipAgent.open('2001', 'b', sip.cm2!);
    assert.equal((await caller.registration()).status, 200);
    assert.equal((await heldParty.register()).status, 200);
    await caller.dial('2001');
    await caller.waitEvent('CALL_ESTABLISHED', 10_000);
    await caller.command('hold');
    const moh = () =>
      cluster
        .node('cm2')
        .sip!.calls.calls()[0]
        ?.resources.find((r) => r.type === 'moh')?.resource;
    await eventually(() => moh() === 'MOH3', 5000, 'MOH from MOH3');
    const hearsMusic = () => toneShare(heldParty!.heardSince(Date.now() - 700), 8000, 600);
    await eventually(() => hearsMusic() > 0.5, 4000, 'the held phone to hear MOH3');
    await cluster.crash('cm3');
    await eventually(() => moh() === 'MOH1', 5000, 'MOH to move to MOH1');
    await eventually(() => hearsMusic() > 0.5, 4000, 'the held phone to hear MOH1');
    // Every SDP Tandem sent the held phone in this dialog (the call, MOH3, MOH1) has one origin: same
    // session id, the version one up each time (RFC 3264 §8), though they came from three sources.
    await eventually(
      () => heldParty!.received.filter((r) => r.method === 'INVITE').length >= 3,
      3000,
      'the re-INVITE to MOH1',
    );
    const origins = heldParty.received
      .filter((r) => r.method === 'INVITE')
      .map((r) => /^o=(\S+) (\d+) (\d+) /m.exec(r.body.toString())!.slice(1, 4));
    assert.ok(origins.length >= 3, `${origins.length} INVITEs`);
    assert.equal(new Set(origins.map((o) => `${o[0]} ${o[1]}`)).size, 1, JSON.stringify(origins));
    const versions = origins.map((o) => Number(o[2]));
    assert.ok(
      versions.every((v, i) => i === 0 || v > versions[i - 1]!),
      `versions ${versions.join(',')}`,
    );
    await caller.command('hangup');
  });
});
