// Two Tandem clusters joined by a trunk, as sites that should not share a
// bus are joined (issue 21.4): each its own bus, config and credentials; a
// phone of one calls a phone of the other through a trunk that carries G.722
// between the sites, so each side takes a transcoder from its own MRGL
// (east: PCMU phone to G.722, west: G.722 to a PCMA phone), and the far
// phone hears the near one through both; then the call the other way.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { SipAgent, hearsTone, sdpMedia } from '../helpers/sipAgent.ts';

describe('cluster to cluster through a trunk, a transcoder on each side', () => {
  let east: EmbeddedCluster;
  let west: EmbeddedCluster;
  const sip: Record<string, string> = {};
  const agents: SipAgent[] = [];

  const agent = async (number: string, node: string, codecs: Array<0 | 8>) => {
    const a = await SipAgent.open(number, 'p', sip[node]!);
    a.codecs = codecs;
    agents.push(a);
    assert.equal((await a.register()).status, 200);
    return a;
  };

  before(async () => {
    const eastNodes = await mediaNodes(['e1'], 53900, 40, sip);
    const westNodes = await mediaNodes(['w1'], 53940, 40, sip);
    east = await startCluster(
      `
cluster: { name: east }
${eastNodes}
media_resources:
  XE: { type: transcoder, node: e1, capacity: 4, codecs: [PCMU, PCMA, G722] }
media_resource_groups: { MRG_E: { devices: [XE] } }
media_resource_group_lists: { MRGL_E: [MRG_E] }
device_pools: { DP: { mrgl: MRGL_E } }
trunks:
  WEST: { nodes: [e1], peers: ["${sip.w1}"], device_pool: DP, codecs: [G722], options_ping_s: 0 }
dial_plan:
  route_patterns:
    - { pattern: "7.2XXX", route: [WEST], discard: predot }
phones:
  "1001": { node: e1, password: p, device_pool: DP, codecs: [PCMU] }
`,
      { sip: true },
    );
    west = await startCluster(
      `
cluster: { name: west }
${westNodes}
media_resources:
  XW: { type: transcoder, node: w1, capacity: 4, codecs: [PCMU, PCMA, G722] }
media_resource_groups: { MRG_W: { devices: [XW] } }
media_resource_group_lists: { MRGL_W: [MRG_W] }
device_pools: { DP: { mrgl: MRGL_W } }
trunks:
  EAST: { nodes: [w1], peers: ["${sip.e1}"], device_pool: DP, codecs: [G722], options_ping_s: 0 }
dial_plan:
  route_patterns:
    - { pattern: "7.1XXX", route: [EAST], discard: predot }
phones:
  "2001": { node: w1, password: p, device_pool: DP, codecs: [PCMA] }
`,
      { sip: true },
    );
  });
  after(async () => {
    for (const a of agents) a.close();
    await east?.stop();
    await west?.stop();
  });

  it("east 1001 (PCMU) calls west 2001 (PCMA): G.722 between the sites, a transcoder from each side's own MRGL, audio both ways", async () => {
    const caller = await agent('1001', 'e1', [0]);
    const callee = await agent('2001', 'w1', [8]);
    const call = await caller.invite('72001', { timeoutMs: 6000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const eastDevices = east
      .node('e1')
      .sip!.calls.calls()
      .flatMap((c) => c.resources.map((r) => r.resource));
    const westDevices = west
      .node('w1')
      .sip!.calls.calls()
      .flatMap((c) => c.resources.map((r) => r.resource));
    assert.deepEqual(eastDevices, ['XE'], 'east transcodes PCMU to G.722 for the trunk');
    assert.deepEqual(westDevices, ['XW'], 'west transcodes G.722 to PCMA for its phone');
    const ringing = callee.received.filter((r) => r.method === 'INVITE').at(-1)!;
    assert.match(ringing.body.toString(), /m=audio \d+ RTP\/AVP 8[ \r]/, 'the west phone is offered PCMA');
    const toWest = await hearsTone(caller, sdpMedia(call.final.body), callee, 700);
    const toEast = await hearsTone(callee, sdpMedia(ringing.body), caller, 1100);
    assert.ok(
      toWest > 0.5 && toEast > 0.5,
      `audio both ways through two transcoders (${toWest.toFixed(2)}, ${toEast.toFixed(2)})`,
    );
    assert.equal((await caller.bye(call)).status, 200);
    await eventually(
      () => west.node('w1').sip!.calls.calls().length === 0 && east.node('e1').sip!.calls.calls().length === 0,
      3000,
      'both sites to end the call',
    );
  });

  it('the other way: west 2001 calls east 1001, each site again with its own transcoder; the callee hangs up', async () => {
    const caller = await agent('2001', 'w1', [8]);
    const callee = await agent('1001', 'e1', [0]);
    const call = await caller.invite('71001', { timeoutMs: 6000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const ringing = callee.received.filter((r) => r.method === 'INVITE').at(-1)!;
    const toEast = await hearsTone(caller, sdpMedia(call.final.body), callee, 900);
    const toWest = await hearsTone(callee, sdpMedia(ringing.body), caller, 500);
    assert.ok(toEast > 0.5 && toWest > 0.5, `audio both ways (${toEast.toFixed(2)}, ${toWest.toFixed(2)})`);
    assert.equal((await callee.requestInAnsweredCall('BYE')).status, 200);
    await eventually(() => caller.received.some((r) => r.method === 'BYE'), 3000, 'the west phone to get the BYE');
    await eventually(
      () => west.node('w1').sip!.calls.calls().length === 0 && east.node('e1').sip!.calls.calls().length === 0,
      3000,
      'both sites to end the call',
    );
  });
});
