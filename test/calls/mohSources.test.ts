// User hold audio sources (CUCM's "User Hold MOH Audio Source"): what a held
// party hears is chosen by the holding phone's device pool (or the phone
// itself); which MOH server plays it, by the held phone's MRGL.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { parseConfig } from '../../src/config/load.ts';
import { toneShare, writeToneWav } from '../helpers/audio.ts';
import { Baresip } from '../helpers/baresip.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { SipAgent } from '../helpers/sipAgent.ts';

describe('music on hold sources per device pool and phone', () => {
  let cluster: EmbeddedCluster;
  const sip: Record<string, string> = {};
  const phones: Baresip[] = [];
  let held: SipAgent | undefined;
  let dir = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-moh-src-'));
    writeToneWav(join(dir, 'one.wav'), 600, 10);
    writeToneWav(join(dir, 'two.wav'), 900, 10);
    const nodes = await mediaNodes(['cm1', 'cm2'], 48900, 100, sip);
    cluster = await startCluster(
      `
media_dir: "${dir}"
${nodes}
media_resources:
  MOH2: { type: moh, node: cm2, capacity: 4, audio_sources: { "1": "${join(dir, 'one.wav')}", "2": "${join(dir, 'two.wav')}" } }
device_pools:
  P1: { moh_audio_source: 1 }
  P2: { moh_audio_source: 2 }
phones:
  "1001": { node: cm1, password: a, device_pool: P1 }
  "1002": { node: cm1, password: b, device_pool: P2 }
  "1003": { node: cm1, password: c, device_pool: P2, moh_audio_source: 1 }
  "2001": { node: cm2, password: h, device_pool: P1 }
`,
      { sip: true, admin: false },
    );
  });
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    held?.close();
    await cluster.stop();
  });

  it('the held party hears the source of the holding phone’s pool, or of the phone itself', async () => {
    held = await SipAgent.open('2001', 'h', sip.cm2!);
    assert.equal((await held.register()).status, 200);
    const hears = (hz: number) => toneShare(held!.heardSince(Date.now() - 700), 8000, hz);
    for (const [number, password, hz, tone] of [
      ['1001', 'a', 600, 440],
      ['1002', 'b', 900, 1000],
      ['1003', 'c', 600, 1700],
    ] as const) {
      const p = await Baresip.start({ number, password, registrar: sip.cm1!, toneHz: tone });
      phones.push(p);
      assert.equal((await p.registration()).status, 200);
      const i = p.events.length;
      await p.dial('2001');
      await p.waitEvent('CALL_ESTABLISHED', 10_000, i);
      await p.command('hold');
      await eventually(() => hears(hz) > 0.5, 5000, `the held party to hear ${hz} Hz while ${number} holds`);
      const moh = cluster
        .node('cm2')
        .sip!.calls.calls()[0]!
        .resources.find((r) => r.type === 'moh');
      assert.equal(moh?.resource, 'MOH2');
      await p.command('hangup');
      await eventually(() => cluster.node('cm2').sip!.calls.calls().length === 0, 5000, 'the call to end');
      await p.stop();
    }
  });

  it('check-config refuses a source no moh server plays', () => {
    const r = parseConfig(`
nodes: { cm1: { sip: "127.0.0.1:1", admin: "127.0.0.1:2" } }
media_resources:
  M: { type: moh, node: cm1, capacity: 1, audio_sources: { "1": a.wav } }
device_pools:
  P: { moh_audio_source: 7 }
phones:
  "1001": { node: cm1, password: p, device_pool: P, moh_audio_source: 9 }
`);
    assert.equal(r.ok, false);
    const problems = r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
    assert.ok(
      problems.includes('device_pools.P.moh_audio_source: no moh server has audio source 7'),
      problems.join('\n'),
    );
    assert.ok(problems.includes('phones.1001.moh_audio_source: no moh server has audio source 9'), problems.join('\n'));
  });
});
