// Calls beyond the cluster through SIP trunks (issue 21), against real SIP
// user agents on real sockets standing in for carriers: the dial plan's
// route patterns (closest match, digits before the dot discarded), a
// transcoder from the phone's MRGL where the carrier takes another codec,
// failover from a peer that never answers to the trunk's next peer and from
// a carrier that answers 503 to the route's next trunk (on another node),
// no failover on the callee's own refusal, class of service (partitions),
// and calls in: a DID reaching a phone on another node, only from the
// trunk's own address.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { toneShare, writeToneWav } from '../helpers/audio.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { SipAgent, hearsTone, offerSdp, sdpMedia, type AgentCall } from '../helpers/sipAgent.ts';

/** the music on hold of the trunk's pool (its MRGL: the default group, MOH2) */
const HOLD_HZ = 600;

describe('SIP trunks and the dial plan', () => {
  let cluster: EmbeddedCluster;
  const holdDir = mkdtempSync(join(tmpdir(), 'tandem-trunk-hold-'));
  const sip: Record<string, string> = {};
  const agents: SipAgent[] = [];
  /** a peer address that takes datagrams and never answers (a carrier's dead server) */
  let dead: Socket;
  let deadHeard = 0;
  /** carriers: A behind CARRIER (PCMA only, on cm2), B behind BACKUP (PCMU, on cm1) */
  let carrierA: SipAgent;
  let carrierB: SipAgent;
  /** behind PINGED (OPTIONS every second): a dead peer first, then C */
  let dead2: Socket;
  let dead2Invites = 0;
  let carrierC: SipAgent;

  const agent = async (number: string, node: string) => {
    const a = await SipAgent.open(number, 'p', sip[node]!);
    agents.push(a);
    assert.equal((await a.register()).status, 200);
    return a;
  };
  const invitesTo = (a: SipAgent) =>
    a.received.filter((r) => r.method === 'INVITE' && !/;\s*tag=/.test(r.headers.get('to') ?? ''));
  /** What one party hears of the other's tone over ~1 s. */

  before(async () => {
    dead = createSocket('udp4');
    dead.on('message', () => deadHeard++);
    await new Promise<void>((r) => dead.bind(0, '127.0.0.1', () => r()));
    const nodes = await mediaNodes(['cm1', 'cm2'], 53600, 200, sip);
    writeToneWav(join(holdDir, 'hold.wav'), HOLD_HZ, 10);
    // The carriers send from the ports they listen on, as SIP servers do; the trunks name those.
    carrierA = await SipAgent.open('5557777', 'x', sip.cm2!);
    carrierA.codecs = [8];
    carrierA.strictCodecs = true;
    carrierB = await SipAgent.open('5558888', 'x', sip.cm1!);
    carrierC = await SipAgent.open('5559999', 'x', sip.cm1!);
    agents.push(carrierA, carrierB, carrierC);
    dead2 = createSocket('udp4');
    dead2.on('message', (m) => m.toString().startsWith('INVITE ') && dead2Invites++);
    await new Promise<void>((r) => dead2.bind(0, '127.0.0.1', () => r()));
    cluster = await startCluster(
      `
media_dir: "${holdDir}"
${nodes}
media_resources:
  XC: { type: transcoder, node: cm2, capacity: 8, codecs: [PCMU, PCMA] }
  MOH2: { type: moh, node: cm2, capacity: 4, audio_sources: { "1": "hold.wav" } }
  MTP1: { type: mtp, node: cm1, capacity: 4, dtmf: [rfc4733, sip_info] }
  CFB: { type: conference_bridge, node: cm1, capacity: 8 }
device_pools:
  DP: {}
  LOBBY: {}
  EXEC: { partitions: [intl] }
trunks:
  CARRIER:
    nodes: [cm2]
    peers: ["127.0.0.1:${dead.address().port}", "127.0.0.1:${carrierA.port}"]
    device_pool: DP
    codecs: [PCMA]
    setup_timeout_ms: 500
    options_ping_s: 0
    inbound: { "5550100": "1001" }
  BACKUP:
    nodes: [cm1]
    peers: ["127.0.0.1:${carrierB.port}"]
    device_pool: DP
    codecs: [PCMU]
  PINGED:
    nodes: [cm1]
    peers: ["127.0.0.1:${dead2.address().port}", "127.0.0.1:${carrierC.port}"]
    device_pool: DP
    codecs: [PCMU]
    setup_timeout_ms: 2000
    options_ping_s: 1
dial_plan:
  route_patterns:
    - { pattern: "9.[2-9]XXXXXX", route: [CARRIER, BACKUP], discard: predot }
    - { pattern: "8.XXXX", route: [PINGED, BACKUP], discard: predot }
    - { pattern: "9011.!", partition: intl, route: [CARRIER], discard: predot, prefix: "+" }
sip: { adhoc_conference_number: "7000" }
phones:
  "1001": { node: cm1, password: p, device_pool: EXEC, codecs: [PCMU] }
  "1002": { node: cm1, password: p, device_pool: LOBBY, codecs: [PCMU] }
  "1003": { node: cm1, password: p, device_pool: DP, srtp: required }
  "1004": { node: cm1, password: p, device_pool: DP, codecs: [PCMU], dtmf: [sip_info] }
  "2001": { node: cm2, password: p, device_pool: DP }
`,
      { sip: true },
    );
  });
  after(async () => {
    for (const a of agents) a.close();
    dead?.close();
    dead2?.close();
    await cluster?.stop();
  });

  it("a call out: the closest pattern, the digits after the dot, the next peer after a silent one, a transcoder to the carrier's codec, audio", async () => {
    const phone = await agent('1001', 'cm1');
    const t0 = Date.now();
    const call = await phone.invite('95551234', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    assert.ok(deadHeard >= 1, 'the first peer was tried');
    assert.ok(Date.now() - t0 >= 500, 'the second peer only after the first stayed silent for setup_timeout_ms');
    const inv = invitesTo(carrierA).at(-1)!;
    assert.match(
      inv.uri,
      new RegExp(`^sip:5551234@127\\.0\\.0\\.1:${carrierA.port}$`),
      'the digits after the dot, to the peer',
    );
    assert.match(inv.headers.get('from')!, /sip:1001@/, "the caller's number in From");
    assert.match(
      inv.body.toString(),
      /m=audio \d+ RTP\/AVP 8[ \r]/,
      'the carrier is offered its own codec (PCMA) by the transcoder',
    );
    const half = cluster
      .node('cm1')
      .sip!.calls.calls()
      .find((c) => c.role === 'caller' && c.phone === '1001')!;
    assert.deepEqual(
      half.resources.map((r) => r.resource),
      ['XC'],
      "a transcoder from the caller's MRGL",
    );
    const share = await hearsTone(phone, sdpMedia(call.final.body), carrierA, 700);
    assert.ok(share > 0.5, `the carrier hears the phone through the transcoder (${share.toFixed(2)})`);
    assert.equal((await phone.bye(call)).status, 200);
    await eventually(() => carrierA.received.some((r) => r.method === 'BYE'), 3000, 'the carrier to get the BYE');
  });

  it("a carrier that answers 503: the route's next trunk, on another node, carries the call, audio both ways", async () => {
    const phone = await agent('1001', 'cm1');
    carrierA.refuseInvites = { status: 503, reason: 'Service Unavailable' };
    try {
      const call = await phone.invite('95550001', { timeoutMs: 6000 });
      assert.equal(call.final.status, 200, call.final.reason);
      assert.equal(invitesTo(carrierB).at(-1)?.uri.split('@')[0], 'sip:5550001', 'BACKUP took it');
      const answer = carrierB.received.filter((r) => r.method === 'INVITE').at(-1)!;
      const toCarrier = await hearsTone(phone, sdpMedia(call.final.body), carrierB, 600);
      const toPhone = await hearsTone(carrierB, sdpMedia(answer.body), phone, 900);
      assert.ok(toCarrier > 0.5 && toPhone > 0.5, `audio both ways (${toCarrier.toFixed(2)}, ${toPhone.toFixed(2)})`);
      assert.equal((await phone.bye(call)).status, 200);
    } finally {
      carrierA.refuseInvites = undefined;
    }
  });

  it("the callee's own refusal (486) ends the call: no other trunk is tried", async () => {
    const phone = await agent('1001', 'cm1');
    carrierA.refuseInvites = { status: 486, reason: 'Busy Here' };
    const before = invitesTo(carrierB).length;
    const counts = () =>
      cluster
        .node('cm2')
        .trunkViews()
        .find((t) => t.trunk === 'CARRIER')!;
    const was = counts();
    try {
      const call = await phone.invite('95550002', { timeoutMs: 6000 });
      assert.equal(call.final.status, 486);
      assert.equal(invitesTo(carrierB).length, before, 'BACKUP not tried');
      // Counted on the node that carries the trunk: one more call out, one more failure for the far end's 486.
      const now = counts();
      assert.equal(now.attempts!.out, was.attempts!.out + 1);
      assert.equal(now.failures!.status_486, (was.failures?.status_486 ?? 0) + 1);
    } finally {
      carrierA.refuseInvites = undefined;
    }
  });

  it('class of service: a lobby phone may not dial the international pattern (403); a phone whose pool has the partition may, as +<number>', async () => {
    const lobby = await agent('1002', 'cm1');
    const before = invitesTo(carrierA).length;
    const refused = await lobby.invite('90114420001', { timeoutMs: 3000 });
    assert.equal(refused.final.status, 403);
    assert.equal(invitesTo(carrierA).length, before, 'nothing left the cluster');
    const local = await lobby.invite('95550003', { timeoutMs: 5000 });
    assert.equal(local.final.status, 200, "the open pattern is the lobby phone's");
    assert.equal((await lobby.bye(local)).status, 200);

    const exec = await agent('1001', 'cm1');
    const call = await exec.invite('90114420001', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    assert.equal(invitesTo(carrierA).at(-1)!.uri.split('@')[0], 'sip:+4420001', 'prefix after the discarded digits');
    assert.equal((await exec.bye(call)).status, 200);
  });

  it('OPTIONS keep-alive: a peer that does not answer is skipped at once; a trunk whose peers all fail refuses at once and the route goes on', async () => {
    const peers = () =>
      cluster
        .node('cm1')
        .trunkViews()
        .find((t) => t.trunk === 'PINGED')!
        .peers.map((p) => p.up);
    await eventually(() => peers()[0] === false && peers()[1] === true, 5000, 'the dead peer down, C up');
    const phone = await agent('1001', 'cm1');
    let t0 = Date.now();
    const call = await phone.invite('81234', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    assert.ok(Date.now() - t0 < 1500, `no wait for the dead peer (${Date.now() - t0} ms)`);
    assert.equal(dead2Invites, 0, 'the dead peer got no INVITE');
    assert.equal(invitesTo(carrierC).at(-1)!.uri.split('@')[0], 'sip:1234');
    assert.equal((await phone.bye(call)).status, 200);
    // C stops answering anything: once the keep-alive sees it, PINGED has no peer and BACKUP takes the calls at once.
    carrierC.autoAnswer = false;
    try {
      await eventually(() => peers()[1] === false, 6000, 'C down');
      const before = invitesTo(carrierB).length;
      t0 = Date.now();
      const next = await phone.invite('81235', { timeoutMs: 5000 });
      assert.equal(next.final.status, 200, next.final.reason);
      assert.ok(Date.now() - t0 < 1500, `no wait for PINGED's peers (${Date.now() - t0} ms)`);
      assert.equal(invitesTo(carrierB).length, before + 1, 'BACKUP took it');
      assert.equal((await phone.bye(next)).status, 200);
    } finally {
      carrierC.autoAnswer = true;
    }
    await eventually(() => peers()[1] === true, 4000, 'C up again once it answers');
  });

  it('blind transfer of the outside party: the carrier, called by 1001, is referred to 2001 and talks to it', async () => {
    const phone = await agent('1001', 'cm1');
    const target = await agent('2001', 'cm2');
    carrierA.codecs = [0];
    carrierA.strictCodecs = false;
    try {
      const call = await phone.invite('95550004', { timeoutMs: 5000 });
      assert.equal(call.final.status, 200, call.final.reason);
      const offer = invitesTo(carrierA).at(-1)!;
      assert.equal((await phone.refer(call, '2001')).status, 202);
      await eventually(
        () => phone.received.some((r) => r.method === 'NOTIFY' && /SIP\/2\.0 200/.test(r.body.toString())),
        5000,
        'the final NOTIFY (200)',
      );
      await eventually(() => phone.received.some((r) => r.method === 'BYE'), 3000, 'the transferor to be let go');
      // The carrier was moved to 2001 by a re-INVITE in its dialog (after the network hold's).
      const moved = carrierA.received
        .filter((r) => r.method === 'INVITE' && r.headers.get('call-id') === offer.headers.get('call-id'))
        .at(-1)!;
      const ringing = target.received.filter((r) => r.method === 'INVITE').at(-1)!;
      const toTarget = await hearsTone(carrierA, sdpMedia(moved.body), target, 650);
      const toCarrier = await hearsTone(target, sdpMedia(ringing.body), carrierA, 950);
      assert.ok(
        toTarget > 0.5 && toCarrier > 0.5,
        `the carrier and 2001 talk (${toTarget.toFixed(2)}, ${toCarrier.toFixed(2)})`,
      );
      const half = cluster
        .node('cm2')
        .sip!.calls.calls()
        .find((c) => c.phone === 'CARRIER')!;
      assert.equal(half.far, '2001');
      const byes = carrierA.received.filter((r) => r.method === 'BYE').length;
      assert.equal((await target.requestInAnsweredCall('BYE')).status, 200);
      await eventually(
        () => carrierA.received.filter((r) => r.method === 'BYE').length === byes + 1,
        3000,
        'the carrier to get the BYE',
      );
    } finally {
      carrierA.codecs = [8];
      carrierA.strictCodecs = true;
    }
  });

  it("blind transfer to an outside number: 2001, called by 1001, is referred to 9-5550005 and goes out through the route's trunks; the final NOTIFY is the carrier's answer", async () => {
    const phone = await agent('1001', 'cm1');
    const transferee = await agent('2001', 'cm2');
    const call = await phone.invite('2001', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const before = invitesTo(carrierA).length;
    const deadBefore = deadHeard;
    assert.equal((await phone.refer(call, '95550005')).status, 202);
    await eventually(
      () => phone.received.some((r) => r.method === 'NOTIFY' && /SIP\/2\.0 200/.test(r.body.toString())),
      6000,
      'the final NOTIFY (200: the carrier answered)',
    );
    await eventually(() => phone.received.some((r) => r.method === 'BYE'), 3000, 'the transferor to be let go');
    const out = invitesTo(carrierA).at(-1)!;
    assert.equal(invitesTo(carrierA).length, before + 1);
    assert.ok(deadHeard > deadBefore, "the route's first peer was tried first, as for a dialled call");
    assert.match(out.uri, /^sip:5550005@/, 'the digits after the dot');
    assert.match(out.headers.get('from')!, /sip:2001@/, 'the transferee is the caller of the new call');
    assert.match(out.body.toString(), /m=audio \d+ RTP\/AVP 8[ \r]/, "the carrier's codec, by a transcoder");
    const half = cluster
      .node('cm2')
      .sip!.calls.calls()
      .find((c) => c.phone === '2001')!;
    assert.equal(half.far, '95550005');
    assert.deepEqual(
      half.resources.map((r) => r.resource),
      ['XC'],
      "a transcoder from the transferee's MRGL",
    );
    // The transferee was moved to the carrier by a re-INVITE of its own dialog.
    const moved = transferee.received.filter((r) => r.method === 'INVITE').at(-1)!;
    const answer = carrierA.received.filter((r) => r.method === 'ACK').at(-1);
    assert.ok(answer, 'the carrier got its ACK');
    const toCarrier = await hearsTone(transferee, sdpMedia(moved.body), carrierA, 750);
    assert.ok(toCarrier > 0.5, `the carrier hears the transferee (${toCarrier.toFixed(2)})`);
    const byes = carrierA.received.filter((r) => r.method === 'BYE').length;
    assert.equal((await transferee.requestInAnsweredCall('BYE')).status, 200);
    await eventually(
      () => carrierA.received.filter((r) => r.method === 'BYE').length === byes + 1,
      3000,
      'the carrier to get the BYE',
    );
  });

  it('a transfer out that the callee refuses (486): the final NOTIFY is 486 and both calls end, no other trunk tried', async () => {
    const phone = await agent('1001', 'cm1');
    const transferee = await agent('2001', 'cm2');
    const call = await phone.invite('2001', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const backupBefore = invitesTo(carrierB).length;
    carrierA.refuseInvites = { status: 486, reason: 'Busy Here' };
    try {
      assert.equal((await phone.refer(call, '95550006')).status, 202);
      await eventually(
        () => phone.received.some((r) => r.method === 'NOTIFY' && /SIP\/2\.0 486/.test(r.body.toString())),
        6000,
        "the final NOTIFY (the callee's 486)",
      );
      await eventually(
        () => transferee.received.some((r) => r.method === 'BYE'),
        3000,
        'the transferee, in a dialog already, is hung up',
      );
      await eventually(() => cluster.node('cm2').sip!.calls.calls().length === 0, 3000, 'no half left on cm2');
      await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 3000, 'no half left on cm1');
      assert.equal(invitesTo(carrierB).length, backupBefore, "the callee's own refusal: BACKUP not tried");
    } finally {
      carrierA.refuseInvites = undefined;
    }
  });

  it("a transfer out is held to the referring phone's class of service: the lobby phone may not send its caller abroad (403), and a number no pattern matches is 404; the call goes on", async () => {
    const lobby = await agent('1002', 'cm1');
    const other = await agent('2001', 'cm2');
    const call = await lobby.invite('2001', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const before = invitesTo(carrierA).length;
    assert.equal((await lobby.refer(call, '9011442079460000')).status, 403);
    assert.equal((await lobby.refer(call, '12')).status, 404);
    assert.equal(invitesTo(carrierA).length, before, 'nothing went out');
    assert.equal(
      cluster
        .node('cm2')
        .sip!.calls.calls()
        .find((c) => c.phone === '2001')?.state,
      'up',
      'the call goes on',
    );
    const ringing = other.received.filter((r) => r.method === 'INVITE').at(-1)!;
    const share = await hearsTone(lobby, sdpMedia(call.final.body), other, 850);
    assert.ok(share > 0.5, `the two still talk (${share.toFixed(2)})`);
    assert.ok(ringing);
    assert.equal((await lobby.bye(call)).status, 200);
  });

  it('ad hoc conference with an outside party: 1001 holds the carrier and 2001, dials 7000; the three hear each other on a bridge', async (t) => {
    const phone = await agent('1001', 'cm1');
    const other = await agent('2001', 'cm2');
    carrierA.codecs = [0];
    carrierA.strictCodecs = false;
    t.after(() => {
      carrierA.codecs = [8];
      carrierA.strictCodecs = true;
    });
    const sdp = (port: number, d: 'sendonly' | 'sendrecv') => ({
      type: 'application/sdp',
      data: offerSdp(port).replace('a=sendrecv', `a=${d}`),
    });
    const out = await phone.invite('95550008', { timeoutMs: 5000 });
    assert.equal(out.final.status, 200, out.final.reason);
    const carrierDialog = invitesTo(carrierA).at(-1)!.headers.get('call-id');
    assert.equal((await phone.request(out, 'INVITE', sdp(phone.rtpPort, 'sendonly'))).status, 200);
    const local = await phone.invite('2001', { timeoutMs: 5000 });
    assert.equal(local.final.status, 200, local.final.reason);
    assert.equal((await phone.request(local, 'INVITE', sdp(phone.rtpPort, 'sendonly'))).status, 200);
    const carrierInvites = carrierA.received.filter((r) => r.method === 'INVITE').length;
    const otherInvites = other.received.filter((r) => r.method === 'INVITE').length;
    const conf = await phone.invite('7000', { timeoutMs: 5000 });
    assert.equal(conf.final.status, 200, conf.final.reason);
    const moved = () =>
      carrierA.received.filter((r) => r.method === 'INVITE' && r.headers.get('call-id') === carrierDialog).at(-1)!;
    await eventually(
      () =>
        cluster
          .node('cm2')
          .sip!.calls.calls()
          .some((c) => c.phone === 'CARRIER' && c.resources.some((r) => r.resource === 'CFB')),
      5000,
      "the carrier's half seated on the bridge",
    );
    await eventually(
      () =>
        carrierA.received.filter((r) => r.method === 'INVITE').length > carrierInvites &&
        other.received.filter((r) => r.method === 'INVITE').length > otherInvites,
      5000,
      'the carrier and 2001 moved onto the bridge by re-INVITEs',
    );
    const seat = moved();
    const ringing = other.received.filter((r) => r.method === 'INVITE').at(-1)!;
    const toOther = await hearsTone(carrierA, sdpMedia(seat.body), other, 650);
    assert.ok(toOther > 0.5, `2001 hears the carrier through the bridge (${toOther.toFixed(2)})`);
    const toPhone = await hearsTone(carrierA, sdpMedia(seat.body), phone, 650);
    assert.ok(toPhone > 0.5, `1001 hears the carrier (${toPhone.toFixed(2)})`);
    const toCarrier = await hearsTone(phone, sdpMedia(conf.final.body), carrierA, 950);
    assert.ok(toCarrier > 0.5, `the carrier hears 1001 (${toCarrier.toFixed(2)})`);
    assert.ok(ringing);
    assert.equal((await phone.bye(conf)).status, 200);
    await eventually(
      () => cluster.node('cm1').sip!.calls.calls().length + cluster.node('cm2').sip!.calls.calls().length <= 2,
      5000,
      'the conference to shrink',
    );
  });

  it("explain for a trunk walks its device pool's MRGL, from any node (the trunk is not a phone of it)", async () => {
    for (const node of ['cm1', 'cm2']) {
      const trace = await cluster.node(node).explainAnywhere({ phone: 'CARRIER', type: 'moh' });
      assert.equal(trace.phone, 'CARRIER');
      const chosen = trace.steps.find((s) => s.verdict === 'would_allocate');
      assert.equal(chosen?.device, 'MOH2', `${node}: the music on hold the trunk's callers would hear`);
    }
  });

  it('a number no pattern matches is 404, as before', async () => {
    const phone = await agent('1001', 'cm1');
    assert.equal((await phone.invite('12', { timeoutMs: 3000 })).final.status, 404);
  });

  it('a call in: the DID reaches its phone on another node, which sees the outside number; audio both ways', async () => {
    const phone = await agent('1001', 'cm1');
    // The carrier's INVITE to cm2 (the node that carries CARRIER), from its own address.
    carrierA.codecs = [0];
    let call: AgentCall;
    try {
      call = await carrierA.invite('5550100', { timeoutMs: 5000 });
    } finally {
      carrierA.codecs = [8];
    }
    assert.equal(call.final.status, 200, call.final.reason);
    const ringing = phone.received.filter((r) => r.method === 'INVITE').at(-1)!;
    assert.match(ringing.headers.get('from')!, /sip:5557777@/, 'the phone sees the outside caller');
    const toPhone = await hearsTone(carrierA, sdpMedia(call.final.body), phone, 800);
    const toCarrier = await hearsTone(phone, sdpMedia(ringing.body), carrierA, 500);
    assert.ok(toPhone > 0.5 && toCarrier > 0.5, `audio both ways (${toPhone.toFixed(2)}, ${toCarrier.toFixed(2)})`);
    assert.equal((await carrierA.bye(call)).status, 200);
    await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 3000, 'both halves to end');
  });

  it('hold: the outside party, held by the phone, hears music on hold from its own side; resume brings the phone back', async (t) => {
    const phone = await agent('1001', 'cm1');
    // (a carrier that takes PCMU here: the music on hold is offered in the call's codec)
    carrierA.codecs = [0];
    carrierA.strictCodecs = false;
    t.after(() => {
      carrierA.codecs = [8];
      carrierA.strictCodecs = true;
    });
    const call = await carrierA.invite('5550100', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const direction = (d: 'sendonly' | 'sendrecv') => ({
      type: 'application/sdp',
      data: offerSdp(phone.rtpPort).replace('a=sendrecv', `a=${d}`),
    });
    const reinvites = () =>
      carrierA.received.filter((r) => r.method === 'INVITE' && /;\s*tag=/.test(r.headers.get('to') ?? ''));
    const before = reinvites().length;
    assert.equal((await phone.requestInAnsweredCall('INVITE', direction('sendonly'))).status, 200);
    await eventually(() => reinvites().length > before, 5000, 'the carrier moved to the music on hold');
    await eventually(
      () =>
        cluster
          .node('cm2')
          .sip!.calls.calls()
          .some((c) => c.phone === 'CARRIER' && c.resources.some((r) => r.type === 'moh')),
      5000,
      "the trunk's half holds a music on hold stream",
    );
    await new Promise((r) => setTimeout(r, 1500));
    const held = toneShare(carrierA.heardSince(Date.now() - 1000), 8000, HOLD_HZ);
    assert.ok(held > 0.5, `the carrier hears the hold music (${held.toFixed(2)})`);
    // Resume: the carrier is moved back to the phone, the stream released.
    const atResume = reinvites().length;
    const resumed = await phone.requestInAnsweredCall('INVITE', direction('sendrecv'));
    assert.equal(resumed.status, 200);
    await eventually(() => reinvites().length > atResume, 5000, 'the carrier moved back to the phone');
    await eventually(
      () =>
        !cluster
          .node('cm2')
          .sip!.calls.calls()
          .some((c) => c.resources.some((r) => r.type === 'moh')),
      5000,
      'the music on hold released',
    );
    const back = await hearsTone(phone, sdpMedia(resumed.body), carrierA, 900);
    assert.ok(back > 0.5, `the carrier hears the phone again (${back.toFixed(2)})`);
    assert.equal((await carrierA.bye(call)).status, 200);
    await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 3000, 'both halves to end');
  });

  it('a delayed offer from the carrier (an INVITE without SDP): an MTP anchors the media, our 200 carries the offer, the ACK the answer; audio both ways', async () => {
    const phone = await agent('1001', 'cm1');
    // BACKUP (PCMU, on cm1) has no DIDs: a called number that is a phone's own reaches it.
    const call = await carrierB.invite('1001', { sdp: '', noAck: true, timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const offered = sdpMedia(call.final.body);
    assert.match(offered.text, /m=audio \d+ RTP\/AVP 0 101/, "our 200 offers the trunk's codecs");
    const half = cluster
      .node('cm1')
      .sip!.calls.calls()
      .find((c) => c.phone === 'BACKUP' && c.state === 'up')!;
    assert.deepEqual(
      half.resources.map((r) => [r.type, r.resource]),
      [['mtp', 'MTP1']],
      "an MTP from the trunk's MRGL anchors the media",
    );
    carrierB.ack(call, offerSdp(carrierB.rtpPort, [0]));
    const ringing = phone.received.filter((r) => r.method === 'INVITE').at(-1)!;
    const toPhone = await hearsTone(carrierB, offered, phone, 800);
    const toCarrier = await hearsTone(phone, sdpMedia(ringing.body), carrierB, 500);
    assert.ok(toPhone > 0.5 && toCarrier > 0.5, `audio both ways (${toPhone.toFixed(2)}, ${toCarrier.toFixed(2)})`);
    assert.equal((await carrierB.bye(call)).status, 200);
    await eventually(
      () =>
        cluster
          .node('cm1')
          .localResources()
          .find((r) => r.name === 'MTP1')!.active === 0,
      3000,
      'the MTP released',
    );
  });

  it('DTMF both ways between a carrier that sends RFC 4733 and a SIP INFO phone, converted by an MTP', async () => {
    const phone = await agent('1004', 'cm1');
    phone.eventPt = undefined; // SIP INFO only
    const call = await carrierB.invite('1004', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const half = cluster
      .node('cm1')
      .sip!.calls.calls()
      .find((c) => c.phone === 'BACKUP')!;
    assert.ok(
      half.resources.some((r) => r.type === 'mtp'),
      'an MTP converts',
    );
    await carrierB.sendDigit(sdpMedia(call.final.body), '5');
    await eventually(
      () => phone.received.some((r) => r.method === 'INFO' && /Signal=5/.test(r.body.toString())),
      3000,
      'INFO with Signal=5 at the phone',
    );
    assert.equal(
      (
        await phone.requestInAnsweredCall('INFO', {
          type: 'application/dtmf-relay',
          data: 'Signal=7\r\nDuration=200\r\n',
        })
      ).status,
      200,
    );
    await eventually(
      () => carrierB.rtp.some((p) => p.pt === 101 && p.payload[0] === 7),
      3000,
      'telephone-event 7 at the carrier',
    );
    assert.equal((await carrierB.bye(call)).status, 200);
  });

  it('a delayed offer from a phone whose config requires SRTP is refused (488): no keys could be agreed', async () => {
    const phone = await agent('1003', 'cm1');
    const r = await phone.invite('2001', { sdp: '', timeoutMs: 3000 });
    assert.equal(r.final.status, 488);
    assert.match(r.final.reason, /requires encrypted media/);
  });

  it("calls in come only from the trunk's peers: an unknown DID is 404; the same INVITE from another address is challenged, and never rings", async () => {
    const unknown = await carrierA.invite('5559999', { timeoutMs: 3000 });
    assert.equal(unknown.final.status, 404);
    const phone = await agent('1001', 'cm1');
    const stranger = await SipAgent.open('5557777', 'guess', sip.cm2!);
    agents.push(stranger);
    const rings = phone.received.filter((r) => r.method === 'INVITE').length;
    const r = await stranger.invite('5550100', { timeoutMs: 3000 });
    assert.ok(r.final.status === 403 || r.final.status === 407, `refused (${r.final.status})`);
    assert.equal(phone.received.filter((x) => x.method === 'INVITE').length, rings, 'the phone never rang');
  });
});
