// Attended transfer (REFER with Replaces, RFC 3891) by a real phone across
// three nodes: linphone A (cm1) calls B (cm2), calls C (cm3) on its second
// line (B is put on hold and hears A's hold music), then transfers B to its
// call with C. B and C end up in one call and hear each other; both of A's
// calls end; no line is left taken.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { toneShare, writeToneWav } from '../helpers/audio.ts';
import { eventually } from '../helpers/cluster.ts';
import { Linphone } from '../helpers/linphone.ts';
import { freePort } from '../helpers/ports.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';
import { sdpMedia as media } from '../helpers/sipAgent.ts';

describe('attended transfer (REFER with Replaces) from linphone', () => {
  let lp: Linphone | undefined;
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2', 'cm3'],
    firstRtpPort: 50600,
    span: 60,
    config: () => {
      const moh = join(mkdtempSync(join(tmpdir(), 'tandem-axfer-')), 'moh.wav');
      writeToneWav(moh, 600, 20);
      return `
media_dir: "${dirname(moh)}"
cluster: { name: axfer }
media_resources:
  MOH2: { type: moh, node: cm2, capacity: 4, audio_sources: { "1": "${moh}" } }
device_pools:
  DP: { moh_audio_source: 1 }
phones:
  "1001": { node: cm1, password: a, device_pool: DP }
  "2001": { node: cm2, password: b, device_pool: DP, codecs: [PCMU] }
  "3001": { node: cm3, password: c, device_pool: DP, codecs: [PCMU] }
`;
    },
  });
  after(async () => lp?.stop());
  const calls = (node: string) => fx.cluster.node(node).sip!.calls.calls();

  it('B, held while A consults C, ends up talking to C; A is out of both calls', async () => {
    const [b, c] = await Promise.all([fx.phone('2001', 'b', 'cm2'), fx.phone('3001', 'c', 'cm3')]);
    lp = await Linphone.start({
      number: '1001',
      password: 'a',
      realm: 'axfer',
      registrar: fx.sip.cm1!,
      transport: 'udp',
      sipPort: await freePort(),
      rtpPort: 50900,
    });
    await eventually(
      () => fx.cluster.node('cm1').phones.get('1001')!.snapshot().registration !== undefined,
      15_000,
      'linphone registered',
    );
    const m = lp.mark;
    lp.command(`call sip:2001@${fx.sip.cm1}`);
    await lp.waitFor(/Call 1 with \S+ connected/, 10_000, m);
    // The consultation call: A holds B (B hears A's hold music), then calls C.
    lp.command('pause');
    await lp.waitFor(/is now paused/, 10_000, m);
    lp.command(`call sip:3001@${fx.sip.cm1}`);
    await lp.waitFor(/Call 2 with \S+ connected/, 10_000, m);
    assert.equal(calls('cm2')[0]?.held, true, 'B held');
    await eventually(() => toneShare(b.heardSince(Date.now() - 600), 8000, 600) > 0.5, 5000, 'B to hear music on hold');
    assert.equal(calls('cm1').length, 2, 'A is in two calls (two lines)');
    const invites = (agent: typeof b) => agent.received.filter((r) => r.method === 'INVITE');
    const [toCBefore, toBBefore] = [invites(c).length, invites(b).length];

    lp.command('transfer 1 --to-call 2');
    // C's call is taken over in place (a re-INVITE, no new call ringing); B leaves the music.
    await eventually(() => invites(c).length > toCBefore, 5000, 'C re-INVITEd');
    await eventually(() => calls('cm1').length === 0, 10_000, "both of A's halves ended");
    await eventually(
      () => calls('cm2')[0]?.held === false && calls('cm2')[0]?.far === '3001',
      5000,
      'B off hold, facing C',
    );
    await eventually(() => invites(b).length > toBBefore, 5000, 'B re-INVITEd towards C');
    const hc = calls('cm3');
    assert.equal(hc.length, 1);
    assert.deepEqual([hc[0]!.phone, hc[0]!.far, hc[0]!.peer_node, hc[0]!.state], ['3001', '2001', 'cm2', 'up']);
    assert.equal(hc[0]!.call, calls('cm2')[0]!.call, 'one call between B and C');
    assert.equal(fx.cluster.node('cm2').localResources()[0]!.active, 0, 'the music on hold released');

    // Audio both ways between B and C.
    const toC = media(invites(b).at(-1)!.body);
    const toB = media(invites(c).at(-1)!.body);
    const t0 = Date.now();
    await Promise.all([b.streamRtp(toC, 0, 50), c.streamRtp(toB, 0, 50)]);
    const heard = (x: typeof b) => x.rtp.filter((p) => p.at >= t0 && p.payload[0] === 0x55).length;
    await eventually(() => heard(b) >= 45 && heard(c) >= 45, 2000, 'B and C to hear each other');
    assert.ok(c.rtp.filter((p) => p.at >= t0 && p.payload[0] === 0x55).length >= 45, 'C hears B');
    assert.ok(b.rtp.filter((p) => p.at >= t0 && p.payload[0] === 0x55).length >= 45, 'B hears C');
    await lp.waitFor(/Call 1 .*(ended|transfered|transferred)|Call 2 .*ended/i, 10_000, m);

    // No line left taken: the phones' device processes show one call each, and none after the hang-up.
    assert.deepEqual(fx.cluster.node('cm2').phones.get('2001')!.snapshot().calls.length, 1);
    assert.deepEqual(fx.cluster.node('cm1').phones.get('1001')!.snapshot().calls, []);
  });
});
