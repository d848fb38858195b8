// Ad hoc conference built from calls by a real phone, across three nodes:
// linphone A (cm1) calls B (cm2), holds it, calls C (cm3), holds it, and
// dials the ad hoc conference number. B and C are moved onto a bridge of A's
// MRGL with A; each hears the other two and not itself (tones). When C
// hangs up, A and B are a plain two-party call again (no bridge), and still
// hear each other.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readWav, toneShare, tonesIn, writeToneWav } from '../helpers/audio.ts';
import { eventually } from '../helpers/cluster.ts';
import { Linphone } from '../helpers/linphone.ts';
import { freePort } from '../helpers/ports.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';
import { sdpMedia as media, type SipAgent } from '../helpers/sipAgent.ts';

const [A_HZ, B_HZ, C_HZ] = [1000, 500, 700];

describe('ad hoc conference from calls (linphone dials the conference number)', () => {
  let lp: Linphone | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'tandem-adhoc-'));
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2', 'cm3'],
    firstRtpPort: 50700,
    span: 60,
    config: () => `
cluster: { name: adhoc }
sip: { adhoc_conference_number: "80" }
media_resources:
  CFB1: { type: conference_bridge, node: cm1, capacity: 8 }
  CFB3: { type: conference_bridge, node: cm3, capacity: 8 }
media_resource_groups:
  MRG_CM1: { devices: [CFB1] }
  MRG_CM3: { devices: [CFB3] }
media_resource_group_lists:
  MRGL_CM1: [MRG_CM1]
  MRGL_CM3: [MRG_CM3]
device_pools:
  DP1: { mrgl: MRGL_CM1 }
  DP3: { mrgl: MRGL_CM3 }
phones:
  "1001": { node: cm1, password: a, device_pool: DP1 }
  "2001": { node: cm2, password: b, device_pool: DP3, codecs: [PCMU] }
  "3001": { node: cm3, password: c, device_pool: DP3, codecs: [PCMU] }
  "4001": { node: cm2, password: d, device_pool: DP3, codecs: [PCMU] }
`,
  });
  after(async () => lp?.stop());
  /** Linphone as A (1001 on cm1), started and registered by the first test that needs it. */
  const linphone = async (): Promise<Linphone> => {
    if (lp) return lp;
    const started = await Linphone.start({
      number: '1001',
      password: 'a',
      realm: 'adhoc',
      registrar: fx.sip.cm1!,
      transport: 'udp',
      sipPort: await freePort(),
      rtpPort: 51000,
    });
    lp = started;
    await eventually(
      () => fx.cluster.node('cm1').phones.get('1001')!.snapshot().registration !== undefined,
      15_000,
      'linphone registered',
    );
    return started;
  };
  /** Dials from linphone and waits for the answer (its call id from its own output: ids go on across tests); leaves the call held when `hold`. */
  const dial = async (lp: Linphone, number: string, hold: boolean) => {
    const from = lp.mark;
    lp.command(`call sip:${number}@${fx.sip.cm1}`);
    const id = (await lp.waitFor(/assigned id (\d+)/, 10_000, from))[1]!;
    await lp.waitFor(new RegExp(`Call ${id} with \\S+ connected`), 10_000, from);
    if (!hold) return;
    lp.command('pause');
    await lp.waitFor(new RegExp(`Call ${id} with \\S+ is now paused`), 10_000, from);
  };
  const calls = (node: string) => fx.cluster.node(node).sip!.calls.calls();
  const invites = (agent: SipAgent) => agent.received.filter((r) => r.method === 'INVITE');
  const bridgeActive = (node: string, name: string) =>
    fx.cluster
      .node(node)
      .localResources()
      .find((r) => r.name === name)!.active;

  it("joins A, B and C on a bridge of A's MRGL; each hears the others; back to A-B when C leaves", async () => {
    const [b, c] = await Promise.all([fx.phone('2001', 'b', 'cm2'), fx.phone('3001', 'c', 'cm3')]);
    const tone = join(dir, 'a.wav');
    writeToneWav(tone, A_HZ, 30);
    const lp = await linphone();
    await dial(lp, '2001', true);
    await dial(lp, '3001', true);
    const [toBBefore, toCBefore] = [invites(b).length, invites(c).length];
    await dial(lp, '80', false);

    // B and C are moved onto A's bridge (CFB1, from A's MRGL, though theirs names CFB3); A's legs of the two calls end.
    await eventually(
      () => invites(b).length > toBBefore && invites(c).length > toCBefore,
      5000,
      'B and C re-INVITEd to the bridge',
    );
    await eventually(() => calls('cm1').length === 1, 5000, "A's two-party halves ended");
    assert.equal(calls('cm1')[0]!.far, '80');
    assert.ok(
      calls('cm2')[0]!.conference && calls('cm2')[0]!.conference === calls('cm3')[0]!.conference,
      'B and C in one room',
    );
    assert.equal(bridgeActive('cm1', 'CFB1'), 3, 'three seats on CFB1');
    assert.equal(bridgeActive('cm3', 'CFB3'), 0);

    // Each hears the other two and not itself.
    lp.command(`play ${tone}`);
    const rec = join(dir, 'a-heard.wav');
    lp.command(`record ${rec}`);
    const toBridgeB = media(invites(b).at(-1)!.body);
    const toBridgeC = media(invites(c).at(-1)!.body);
    const t0 = Date.now();
    await Promise.all([b.streamTone(toBridgeB, B_HZ, 100), c.streamTone(toBridgeC, C_HZ, 100)]);
    const heardB = b.heardSince(t0 + 500);
    const heardC = c.heardSince(t0 + 500);
    assert.ok(
      toneShare(heardB, 8000, C_HZ) > 0.1 && toneShare(heardB, 8000, A_HZ) > 0.1,
      `B hears C and A (${toneShare(heardB, 8000, C_HZ).toFixed(2)}, ${toneShare(heardB, 8000, A_HZ).toFixed(2)})`,
    );
    assert.ok(toneShare(heardB, 8000, B_HZ) < 0.05, 'B does not hear itself');
    assert.ok(toneShare(heardC, 8000, B_HZ) > 0.1 && toneShare(heardC, 8000, A_HZ) > 0.1, 'C hears B and A');
    assert.ok(toneShare(heardC, 8000, C_HZ) < 0.05, 'C does not hear itself');

    // C leaves: A and B are paired back into a two-party call, the bridge seats released.
    assert.equal((await c.requestInAnsweredCall('BYE')).status, 200);
    await eventually(
      () => calls('cm2')[0]?.conference === null && calls('cm1')[0]?.conference === null,
      5000,
      'A and B back to a two-party call',
    );
    assert.deepEqual(
      [calls('cm1')[0]!.far, calls('cm1')[0]!.peer_node, calls('cm2')[0]!.far, calls('cm2')[0]!.peer_node],
      ['2001', 'cm2', '1001', 'cm1'],
    );
    assert.equal(calls('cm1')[0]!.call, calls('cm2')[0]!.call);
    await eventually(() => bridgeActive('cm1', 'CFB1') === 0, 5000, 'the bridge seats released');
    // linphone takes a new RTP port per call from 51000 up.
    const toLinphone = () => media(invites(b).at(-1)!.body).port;
    await eventually(() => toLinphone() >= 51000 && toLinphone() < 51100, 5000, "B's media to go straight to linphone");
    const toA = media(invites(b).at(-1)!.body);
    const t1 = Date.now();
    await b.streamTone(toA, B_HZ, 75);
    assert.ok(toneShare(b.heardSince(t1 + 300), 8000, A_HZ) > 0.3, 'B hears A');
    lp.command('terminate all');
    await eventually(() => calls('cm1').length === 0 && calls('cm2').length === 0, 5000, 'the call ends');
    // What A heard (linphone's recording): B and C while in the conference.
    await eventually(() => existsSync(rec), 5000, 'linphone wrote its recording');
    const heardA = tonesIn(readWav(rec), [B_HZ, C_HZ, A_HZ]);
    assert.ok(
      heardA.share[B_HZ]! > 0.05 && heardA.share[C_HZ]! > 0.05,
      `A hears B and C (${JSON.stringify(heardA.share)})`,
    );
  });

  it('a fourth party joins when the initiator dials the conference number again from a new call', async () => {
    const [b, c, d, lp] = await Promise.all([
      fx.phone('2001', 'b', 'cm2'),
      fx.phone('3001', 'c', 'cm3'),
      fx.phone('4001', 'd', 'cm2'),
      linphone(),
    ]);
    await dial(lp, '2001', true);
    await dial(lp, '3001', true);
    await dial(lp, '80', true);
    await eventually(() => bridgeActive('cm1', 'CFB1') === 3, 5000, 'A, B and C in conference');
    const room = calls('cm2').find((x) => x.phone === '2001')!.conference;
    await dial(lp, '4001', true);
    const toDBefore = invites(d).length;
    await dial(lp, '80', false);
    await eventually(
      () => calls('cm2').find((x) => x.phone === '4001')?.conference === room,
      5000,
      'D in the same room',
    );
    await eventually(
      () => calls('cm1').length === 1 && bridgeActive('cm1', 'CFB1') === 4,
      5000,
      "A's old seat replaced by its new one: four seats",
    );
    await eventually(() => invites(d).length > toDBefore, 5000, 'D moved to the bridge');
    const t0 = Date.now();
    await Promise.all([
      b.streamTone(media(invites(b).at(-1)!.body), B_HZ, 75),
      d.streamTone(media(invites(d).at(-1)!.body), C_HZ, 75),
    ]);
    assert.ok(toneShare(d.heardSince(t0 + 300), 8000, B_HZ) > 0.1, 'D hears B');
    assert.ok(toneShare(b.heardSince(t0 + 300), 8000, C_HZ) > 0.1, 'B hears D');
    // One leaves: three remain, still a conference.
    assert.equal((await d.requestInAnsweredCall('BYE')).status, 200);
    await eventually(() => bridgeActive('cm1', 'CFB1') === 3, 5000, 'D left');
    assert.ok(
      calls('cm2').find((x) => x.phone === '2001')!.conference === room && calls('cm3')[0]!.conference === room,
    );
    // The initiator leaves: B and C go on as a two-party call (CUCM's default), the bridge is free.
    lp.command('terminate all');
    await eventually(
      () => bridgeActive('cm1', 'CFB1') === 0 && calls('cm1').length === 0,
      10_000,
      'the bridge released',
    );
    await eventually(
      () =>
        calls('cm2')[0]?.far === '3001' &&
        calls('cm3')[0]?.far === '2001' &&
        calls('cm2')[0]?.call === calls('cm3')[0]?.call,
      5000,
      'B and C paired',
    );
    assert.equal((await c.requestInAnsweredCall('BYE')).status, 200);
    await eventually(() => calls('cm2').length === 0 && calls('cm3').length === 0, 5000, 'the call ends');
  });
});
