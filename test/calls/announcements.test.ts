// Announcements: a caller whose call cannot go through hears a prompt from
// an annunciator of its MRGL (early media, 183 with SDP) and then the final
// answer: an unknown number, an unregistered one, no transcoder free.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { toneShare, writeToneWav } from '../helpers/audio.ts';
import { eventually } from '../helpers/cluster.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';

describe('announcements', () => {
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2'],
    firstRtpPort: 49200,
    span: 100,
    config: () => {
      const dir = mkdtempSync(join(tmpdir(), 'tandem-prompts-'));
      writeToneWav(join(dir, 'no-resource.wav'), 700, 1);
      writeToneWav(join(dir, 'unknown.wav'), 1300, 1);
      writeToneWav(join(dir, 'unavailable.wav'), 500, 1);
      writeToneWav(join(dir, 'entry.wav'), 1900, 1);
      return `
media_dir: "${dir}"
media_resources:
  ANN1:
    type: annunciator
    node: cm1
    capacity: 4
    prompts: { no_resource: "${join(dir, 'no-resource.wav')}", unknown_number: "${join(dir, 'unknown.wav')}", unavailable: "${join(dir, 'unavailable.wav')}", conference_entry: "${join(dir, 'entry.wav')}" }
  XC2: { type: transcoder, node: cm2, capacity: 1, codecs: [PCMU, PCMA] }
  CFB2: { type: conference_bridge, node: cm2, capacity: 8 }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: a, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: b, device_pool: DP, codecs: [PCMA] }
  "2002": { node: cm2, password: c, device_pool: DP, codecs: [PCMU] }
sip: { conference_numbers: ["8xxx"] }
`;
    },
  });

  it('plays the prompt of each failure as early media, then answers with its status', async () => {
    const a = await fx.phone('1001', 'a', 'cm1');
    const b = await fx.phone('2001', 'b', 'cm2');
    b.codecs = [8];
    // XC2 taken: the PCMU -> PCMA call gets no transcoder.
    const hog = await fx.cluster.node('cm1').mrm.allocate({ phone: '1001', type: 'transcoder' });
    for (const [dial, hz, status] of [
      ['4444', 1300, 404],
      ['2002', 500, 480],
      ['2001', 700, 503],
    ] as const) {
      const t0 = Date.now();
      let early: string | undefined;
      const call = await a.invite(dial, {
        timeoutMs: 8000,
        onProvisional: (r) => r.status === 183 && (early = r.body.toString()),
      });
      assert.equal(call.final.status, status, `${dial}: ${call.final.reason}`);
      assert.match(early ?? '', /m=audio \d+ RTP\/AVP 0/, `${dial}: 183 with SDP`);
      const heard = a.heardSince(t0);
      assert.ok(heard.length >= 4000, `${dial}: ${heard.length} samples of the prompt`);
      assert.ok(toneShare(heard, 8000, hz) > 0.5, `${dial}: the ${hz} Hz prompt`);
      await eventually(
        () =>
          fx.cluster
            .node('cm1')
            .localResources()
            .find((r) => r.name === 'ANN1')!.active === 0,
        2000,
        'the annunciator released',
      );
    }
    await hog.release();
  });

  it('a participant joining a meet-me conference is announced by an entry tone everyone in the room hears', async () => {
    const a = await fx.phone('1001', 'a', 'cm1');
    const c = await fx.phone('2002', 'c', 'cm2');
    const ca = await a.invite('8001');
    assert.equal(ca.final.status, 200);
    await eventually(
      () => toneShare(a.heardSince(Date.now() - 600), 8000, 1900) > 0.5,
      3000,
      'the first participant to hear its own entry tone',
    );
    await new Promise((r) => setTimeout(r, 1500)); // the tone is over
    assert.ok(toneShare(a.heardSince(Date.now() - 300), 8000, 1900) < 0.2, 'silence between entries');
    const cc = await c.invite('8001');
    assert.equal(cc.final.status, 200);
    await eventually(
      () => toneShare(a.heardSince(Date.now() - 600), 8000, 1900) > 0.5,
      3000,
      'the first participant to hear the second one enter',
    );
    await eventually(
      () => toneShare(c.heardSince(Date.now() - 600), 8000, 1900) > 0.5,
      3000,
      'the second participant to hear it too',
    );
    await eventually(
      () =>
        fx.cluster
          .node('cm1')
          .localResources()
          .find((r) => r.name === 'ANN1')!.active === 0,
      3000,
      'the annunciator released after the tone',
    );
    await a.bye(ca);
    await c.bye(cc);
    await eventually(
      () =>
        fx.cluster
          .node('cm2')
          .localResources()
          .find((r) => r.name === 'CFB2')!.active === 0,
      3000,
      'every seat released',
    );
  });

  it('check-config wants known prompt names, and prompts on annunciators only', () => {
    const problems = (yaml: string) => {
      const r = parseConfig(`nodes: { cm1: { sip: "127.0.0.1:1", admin: "127.0.0.1:2" } }\nmedia_resources:\n${yaml}`);
      return r.ok ? '' : r.problems.map((p) => `${p.path}: ${p.message}`).join('\n');
    };
    assert.match(
      problems('  A: { type: annunciator, node: cm1, capacity: 1, prompts: { goodbye: x.wav } }'),
      /media_resources\.A\.prompts: unknown field\(s\): goodbye/,
    );
    assert.match(
      problems('  M: { type: mtp, node: cm1, capacity: 1, prompts: { no_resource: x.wav } }'),
      /media_resources\.M\.prompts: only an annunciator has prompts/,
    );
  });
});
