// The roll of an ad hoc conference survives the death of its owner's node.
// A (cm1) calls B (cm2) and C (cm3) and dials the conference number: the
// three meet on a bridge of A's MRGL on cm3, cm1 owns the conference and
// sends its roll to cm2 and cm3. cm1 crashes: A's seat goes with it, and the
// next owner (cm2, the first name left in the roll) takes the conference
// over from its copy: down to two, B and C are paired into a two-party call,
// the bridge seats are released, and they hear each other.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toneShare } from '../helpers/audio.ts';
import { encode } from '../../src/cluster/codec.ts';
import { eventually, signedAs } from '../helpers/cluster.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';
import { sdpMedia as media, type SipAgent } from '../helpers/sipAgent.ts';

describe('ad hoc conference: the owner’s node dies', () => {
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2', 'cm3'],
    firstRtpPort: 52700,
    span: 60,
    config: () => `
cluster: { name: adhocfo }
sip: { adhoc_conference_number: "80" }
media_resources:
  CFB3: { type: conference_bridge, node: cm3, capacity: 8 }
media_resource_groups:
  G3: { devices: [CFB3] }
media_resource_group_lists:
  L3: [G3]
device_pools:
  DP: { mrgl: L3 }
phones:
  "1001": { node: cm1, password: a, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: b, device_pool: DP, codecs: [PCMU] }
  "3001": { node: cm3, password: c, device_pool: DP, codecs: [PCMU] }
`,
  });
  const calls = (node: string) => fx.cluster.node(node).sip!.calls.calls();
  const invites = (agent: SipAgent) => agent.received.filter((r) => r.method === 'INVITE');
  const seats = () =>
    fx.cluster
      .node('cm3')
      .localResources()
      .find((r) => r.name === 'CFB3')!.active;

  it("a node cannot audit another node's calls in its name, nor send the roll of a conference it does not own", async () => {
    const cm1 = fx.cluster.node('cm1');
    const as3 = signedAs(fx.cluster, 'cm3', 'cm3', fx.cluster.node('cm3').boot);
    const ask = async (body: unknown) =>
      JSON.parse(
        new TextDecoder().decode(
          await as3.request(cm1.subjects.calls('cm1'), encode(body), 1000, { confidential: true }),
        ),
      ) as { ok: boolean; status?: number };
    const call = '00000000-0000-4000-8000-000000000001';
    // An audit claiming to come from cm2 (whose answer would end cm1's halves of calls with cm2).
    assert.deepEqual(await ask({ op: 'audit', node: 'cm2', halves: [{ call, to: 'caller' }] }), {
      ok: false,
      status: 403,
      reason: 'not the peer of this call',
    });
    // A roll in cm2's name, and one in cm3's own name for a room none of cm1's phones is in.
    const roll = (owner: string) => ({
      op: 'conference_roll',
      room: 'adhoc-x',
      owner,
      initiator: '1001',
      bridge: 'CFB3',
      participants: [{ number: '1001', node: 'cm1', call, role: 'caller' }],
    });
    assert.equal((await ask(roll('cm2'))).status, 403);
    assert.equal((await ask(roll('cm3'))).status, 403);
  });

  it('B and C are paired back by the node that takes the conference over', async () => {
    const [a, b, c] = await Promise.all([
      fx.phone('1001', 'a', 'cm1'),
      fx.phone('2001', 'b', 'cm2'),
      fx.phone('3001', 'c', 'cm3'),
    ]);
    assert.equal((await a.invite('2001')).final.status, 200);
    assert.equal((await a.invite('3001')).final.status, 200);
    assert.equal((await a.invite('80')).final.status, 200);
    await eventually(
      () => calls('cm2')[0]?.conference != null && calls('cm2')[0]?.conference === calls('cm3')[0]?.conference,
      5000,
      'B and C in the room',
    );
    await eventually(() => seats() === 3, 5000, 'three seats on CFB3');
    // The owner sends its roll once the parties have moved: cm2 and cm3 keep a copy.
    const room = calls('cm2')[0]!.conference;
    await eventually(
      () => ['cm2', 'cm3'].every((n) => fx.cluster.node(n).sip!.calls.adhocRollCopies().includes(String(room))),
      5000,
      'the roll copied to cm2 and cm3',
    );
    const [toB, toC] = [invites(b).length, invites(c).length];

    await fx.cluster.crash('cm1');
    await eventually(
      () => calls('cm2')[0]?.conference === null && calls('cm3')[0]?.conference === null,
      10_000,
      'B and C back to a two-party call',
    );
    const [hb, hc] = [calls('cm2')[0]!, calls('cm3')[0]!];
    assert.equal(hb.call, hc.call, 'one call');
    assert.deepEqual([hb.far, hb.peer_node, hc.far, hc.peer_node], ['3001', 'cm3', '2001', 'cm2']);
    await eventually(() => seats() === 0, 5000, 'the bridge seats released');
    await eventually(() => invites(b).length > toB && invites(c).length > toC, 5000, 'both re-INVITEd off the bridge');
    const t0 = Date.now();
    await b.streamTone(media(invites(b).at(-1)!.body), 500, 75);
    assert.ok(toneShare(c.heardSince(t0 + 300), 8000, 500) > 0.3, 'C hears B straight');
  });
});
