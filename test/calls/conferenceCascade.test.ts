// One conference, many bridges: a conference number is one conference
// cluster-wide. Five phones on a number whose first bridge holds 3: the last
// two land on a second bridge on another node, whose room is linked to the
// first; each phone hears the four others (tones) and not itself. Two first
// callers arriving at once through MRGLs that name different bridges end in
// two linked rooms, never in two separate conferences.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toneShare } from '../helpers/audio.ts';
import { eventually } from '../helpers/cluster.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';
import { sdpMedia as media, type AgentCall, type SipAgent } from '../helpers/sipAgent.ts';

describe('a conference across bridges (cascade)', () => {
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2'],
    firstRtpPort: 51300,
    span: 80,
    config: () => `
cluster: { name: cascade, request_timeout_ms: 300 }
sip: { conference_numbers: ["8xxx"] }
media_resources:
  CFB_A: { type: conference_bridge, node: cm1, capacity: 3 }
  CFB_B: { type: conference_bridge, node: cm2, capacity: 8 }
media_resource_groups:
  MRG: { devices: [CFB_A, CFB_B] }
  MRG_A: { devices: [CFB_A] }
  MRG_B: { devices: [CFB_B] }
media_resource_group_lists:
  BOTH: [MRG]
  ONLY_A: [MRG_A]
  ONLY_B: [MRG_B]
device_pools:
  DP: { mrgl: BOTH }
  DPA: { mrgl: ONLY_A }
  DPB: { mrgl: ONLY_B }
phones:
  "1001": { node: cm1, password: p, device_pool: DP, codecs: [PCMU] }
  "1002": { node: cm1, password: p, device_pool: DP, codecs: [PCMU] }
  "1003": { node: cm2, password: p, device_pool: DP, codecs: [PCMU] }
  "1004": { node: cm2, password: p, device_pool: DP, codecs: [PCMU] }
  "1005": { node: cm1, password: p, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm1, password: p, device_pool: DPA, codecs: [PCMU] }
  "2002": { node: cm2, password: p, device_pool: DPB, codecs: [PCMU] }
`,
  });
  const active = (node: string, name: string) =>
    fx.cluster
      .node(node)
      .localResources()
      .find((r) => r.name === name)!.active;

  /** Every phone streams its tone for 1.5 s at once; returns what each heard meanwhile. */
  async function talk(parties: Array<{ agent: SipAgent; call: AgentCall; hz: number }>): Promise<Int16Array[]> {
    const t0 = Date.now();
    await Promise.all(parties.map((p) => p.agent.streamTone(media(p.call.final.body), p.hz, 75)));
    return parties.map((p) => p.agent.heardSince(t0 + 500));
  }

  it('five phones on a number whose first bridge holds three: two bridges, linked; each hears the four others and not itself', async () => {
    const tones = [400, 700, 1000, 1300, 1600];
    const numbers = ['1001', '1002', '1003', '1004', '1005'];
    const nodes = ['cm1', 'cm1', 'cm2', 'cm2', 'cm1'];
    const parties: Array<{ agent: SipAgent; call: AgentCall; hz: number }> = [];
    for (const [i, n] of numbers.entries()) {
      const agent = await fx.phone(n, 'p', nodes[i]!);
      const call = await agent.invite('8100');
      assert.equal(call.final.status, 200, `${n} joins`);
      parties.push({ agent, call, hz: tones[i]! });
    }
    assert.equal(active('cm1', 'CFB_A'), 3, 'the first bridge is full');
    assert.equal(active('cm2', 'CFB_B'), 2, 'two participants on the second bridge');
    const heard = await talk(parties);
    // The link between the bridges (two nodes) is SRTP, its keys made by the linking node and sent sealed.
    for (const node of ['cm1', 'cm2']) {
      const link = (await fx.cluster.node(node).media!.describe()).find((m) => m.allocation.startsWith('link 8100'));
      assert.equal(link?.legs[0]?.srtp, 'AES_CM_128_HMAC_SHA1_80', `${node}'s link leg`);
      assert.ok(
        link!.legs[0]!.received > 50 && link!.legs[0]!.srtp_auth_failures === 0,
        `${node}'s link carries authenticated SRTP: ${JSON.stringify(link)}`,
      );
    }
    for (const [i, h] of heard.entries()) {
      for (const [k, hz] of tones.entries()) {
        const share = toneShare(h, 8000, hz);
        if (k === i) assert.ok(share < 0.02, `${numbers[i]} hears itself (${share.toFixed(3)})`);
        else assert.ok(share > 0.08, `${numbers[i]} should hear ${numbers[k]}'s ${hz} Hz (${share.toFixed(3)})`);
      }
    }
    for (const p of parties) assert.equal((await p.agent.bye(p.call)).status, 200);
    await eventually(() => active('cm1', 'CFB_A') === 0 && active('cm2', 'CFB_B') === 0, 3000, 'the bridges released');
  });

  it('two first callers at once through MRGLs of different bridges end in linked rooms, one conference', async () => {
    const [a, b] = await Promise.all([fx.phone('2001', 'p', 'cm1'), fx.phone('2002', 'p', 'cm2')]);
    const [ca, cb] = await Promise.all([a.invite('8200'), b.invite('8200')]);
    assert.equal(ca.final.status, 200);
    assert.equal(cb.final.status, 200);
    assert.deepEqual([active('cm1', 'CFB_A'), active('cm2', 'CFB_B')], [1, 1], 'a room on each bridge');
    await eventually(
      async () => {
        const [ha, hb] = await talk([
          { agent: a, call: ca, hz: 500 },
          { agent: b, call: cb, hz: 900 },
        ]);
        return toneShare(ha!, 8000, 900) > 0.3 && toneShare(hb!, 8000, 500) > 0.3;
      },
      8000,
      'the two rooms to be linked (each hears the other)',
    );
    for (const [p, c] of [
      [a, ca],
      [b, cb],
    ] as const)
      assert.equal((await p.bye(c)).status, 200);
  });

  it("a node cannot link a room's audio anywhere but another bridge's media address", async () => {
    const a = await fx.phone('1001', 'p', 'cm1');
    const call = await a.invite('8300');
    assert.equal(call.final.status, 200);
    assert.equal(active('cm1', 'CFB_A'), 1, 'the room is open on CFB_A');
    // From cm2, a cluster node signing its requests as itself (what a node with a stolen key could send).
    const cm2 = fx.cluster.node('cm2');
    const pid = fx.cluster.node('cm1').devices.lookup('CFB_A').entry!.pid;
    const link = (body: Record<string, unknown>) => cm2.post.call(pid, { op: 'link', room: '8300', ...body }, 1000);
    await assert.rejects(
      link({ peer: 'CFB_B', remote: { address: '127.0.0.1', port: 9 } }),
      /link refused: 127\.0\.0\.1:9 is not a media address of cm2/,
    );
    await assert.rejects(link({ peer: 'CFB_B', remote: { address: '192.0.2.7', port: 51390 } }), /link refused/);
    await assert.rejects(link({ peer: 'NOT_A_BRIDGE' }), /link refused: NOT_A_BRIDGE is not a conference bridge/);
    await assert.rejects(link({ peer: 'CFB_A' }), /link refused: a bridge cannot link to itself/);
    assert.equal((await a.bye(call)).status, 200);
  });
});
