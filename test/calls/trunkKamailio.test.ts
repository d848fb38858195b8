// A trunk to a carrier's SIP server: Kamailio (a real one, started with a
// script of this test) takes the trunk's REGISTER with Digest, challenges
// its INVITEs, relays calls to a "PSTN phone" behind it and record-routes,
// and sends calls for a DID to the trunk's registered contact only.
// Credentials the server does not accept leave a registration failed, with
// the reason, and retried. When the server stops, the OPTIONS keep-alive
// marks it down and calls leave through the route's next trunk at once.
// Class of service holds at the carrier: a number the caller may not dial
// never reaches it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { Kamailio } from '../helpers/kamailio.ts';
import { freePort } from '../helpers/ports.ts';
import { SipAgent, hearsTone, sdpMedia } from '../helpers/sipAgent.ts';

describe('a trunk to Kamailio: registration, challenged INVITEs, record-route, DIDs', () => {
  let cluster: EmbeddedCluster;
  let kamailio: Kamailio;
  const sip: Record<string, string> = {};
  const agents: SipAgent[] = [];
  let pstn: SipAgent;
  let backup: SipAgent;

  const registration = (trunk: string) =>
    cluster
      .node('cm1')
      .sip!.calls.trunkRegistrations()
      .find((r) => r.trunk === trunk)!;

  before(async () => {
    const [kam, kamBad] = [await freePort(), await freePort()];
    pstn = await SipAgent.open('4155550000', 'x', `127.0.0.1:${kam}`);
    // A second carrier, reached directly: where the route goes when the first carrier's server is gone.
    backup = await SipAgent.open('4155559999', 'x', `127.0.0.1:${kam}`);
    agents.push(pstn, backup);
    // The carrier: REGISTER only with the trunk's password; INVITEs from the trunk challenged, then relayed to the
    // PSTN phone; an INVITE from the PSTN side for a DID goes to where the trunk registered, or gets 480.
    kamailio = await Kamailio.start(
      kam,
      `
  xlog("L_INFO", "ROUTE $rm $ru from $si:$sp\\n");
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { xlog("L_INFO", "LOOSE $rm\\n"); } else { xlog("L_INFO", "NOROUTE $rm\\n"); }
    t_relay();
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
  if (is_method("REGISTER")) {
    if (!pv_www_authenticate("$td", "s3cret", "0")) { www_challenge("$td", "1"); exit; }
    if ($au != "tandem") { sl_send_reply("403", "Forbidden"); exit; }
    save("location");
    exit;
  }
  if (is_method("INVITE")) {
    record_route();
    if ($si == "127.0.0.1" && $sp == ${pstn.port}) {
      $var(did) = $rU;
      $rU = "tandem";
      if (!lookup("location")) { sl_send_reply("480", "Trunk Not Registered"); exit; }
      $rU = $var(did);
      t_relay();
      exit;
    }
    if (!pv_proxy_authenticate("$fd", "s3cret", "0")) { proxy_challenge("$fd", "1"); exit; }
    consume_credentials();
    $du = "sip:127.0.0.1:${pstn.port}";
    t_relay();
    exit;
  }
  sl_send_reply("405", "Method Not Allowed");`,
      [kamBad],
    );
    const nodes = await mediaNodes(['cm1'], 53800, 200, sip);
    cluster = await startCluster(
      `
${nodes}
device_pools:
  DP: {}
  EXEC: { partitions: [intl] }
trunks:
  CARRIER:
    nodes: [cm1]
    peers: ["127.0.0.1:${kam}"]
    device_pool: DP
    codecs: [PCMU]
    auth: { user: tandem, password: s3cret }
    register: { expires_s: 60 }
    inbound: { "5550100": "1001" }
    options_ping_s: 1
  BACKUP:
    nodes: [cm1]
    peers: ["127.0.0.1:${backup.port}"]
    device_pool: DP
    codecs: [PCMU]
  WRONG:
    nodes: [cm1]
    peers: ["127.0.0.1:${kamBad}"]
    device_pool: DP
    auth: { user: tandem, password: not-the-password }
    register: { expires_s: 60 }
dial_plan:
  route_patterns:
    - { pattern: "9.[2-9]!", route: [CARRIER, BACKUP], discard: predot }
    - { pattern: "9011.!", partition: intl, route: [CARRIER], discard: predot, prefix: "+" }
phones:
  "1001": { node: cm1, password: p, device_pool: EXEC, codecs: [PCMU] }
  "1002": { node: cm1, password: p, device_pool: DP, codecs: [PCMU] }
`,
      { sip: true },
    );
  });
  after(async () => {
    for (const a of agents) a.close();
    await cluster?.stop();
    await kamailio?.stop();
  });

  it('registers with Digest; wrong credentials leave the registration failed with the reason', async () => {
    await eventually(() => registration('CARRIER')?.state === 'registered', 5000, 'CARRIER to register');
    assert.ok(registration('CARRIER').expires_at! > Date.now() + 30_000);
    await eventually(() => registration('WRONG')?.state === 'failed', 5000, 'WRONG to fail');
    assert.match(registration('WRONG').last_error!, /^401/);
    const views = cluster.node('cm1').trunkViews();
    assert.deepEqual(
      views.map((v) => [v.trunk, v.registration?.state ?? null, v.calls]),
      [
        ['CARRIER', 'registered', 0],
        ['BACKUP', null, 0],
        ['WRONG', 'failed', 0],
      ],
    );
    assert.doesNotMatch(JSON.stringify(views), /s3cret|not-the-password/, 'no password in the view (/api/trunks)');
  });

  it('a call out: the carrier challenges, the trunk answers with its credentials, the call is relayed and record-routed; audio both ways; BYE through the carrier', async () => {
    const phone = await SipAgent.open('1001', 'p', sip.cm1!);
    agents.push(phone);
    assert.equal((await phone.register()).status, 200);
    const call = await phone.invite('94155551234', { timeoutMs: 6000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const inv = pstn.received.filter((r) => r.method === 'INVITE').at(-1)!;
    assert.match(inv.uri, /^sip:4155551234@/);
    assert.ok(inv.headers.get('record-route'), 'the carrier record-routed');
    assert.match(kamailio.output(), /ROUTE INVITE sip:4155551234@[^ ]+ from 127\.0\.0\.1/);
    assert.equal(
      cluster
        .node('cm1')
        .trunkViews()
        .find((v) => v.trunk === 'CARRIER')!.calls,
      1,
      'one call through the trunk',
    );
    const toPstn = await hearsTone(phone, sdpMedia(call.final.body), pstn, 600);
    const toPhone = await hearsTone(pstn, sdpMedia(inv.body), phone, 900);
    assert.ok(toPstn > 0.5 && toPhone > 0.5, `audio both ways (${toPstn.toFixed(2)}, ${toPhone.toFixed(2)})`);
    assert.equal((await phone.bye(call)).status, 200);
    await eventually(() => pstn.received.some((r) => r.method === 'BYE'), 3000, 'the BYE to reach the PSTN phone');
    // Our BYE carried the route set, so the carrier routed it as a loose router.
    assert.match(kamailio.output(), /LOOSE BYE/);
    assert.doesNotMatch(kamailio.output(), /NOROUTE (BYE|ACK)/);
  });

  it('a call in: the carrier sends the DID to the registered trunk, which reaches the phone; the caller hangs up through the carrier', async () => {
    const phone = await SipAgent.open('1001', 'p', sip.cm1!);
    agents.push(phone);
    assert.equal((await phone.register()).status, 200);
    const call = await pstn.invite('5550100', { timeoutMs: 6000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const ringing = phone.received.filter((r) => r.method === 'INVITE').at(-1)!;
    assert.match(ringing.headers.get('from')!, /sip:4155550000@/, 'the phone sees the PSTN caller');
    const toPhone = await hearsTone(pstn, sdpMedia(call.final.body), phone, 800);
    assert.ok(toPhone > 0.5, `the phone hears the PSTN caller (${toPhone.toFixed(2)})`);
    assert.equal((await pstn.bye(call)).status, 200);
    await eventually(() => phone.received.some((r) => r.method === 'BYE'), 3000, 'the phone to get the BYE');
    await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 3000, 'both halves to end');
  });

  it('class of service: the lobby phone may not dial abroad (403, nothing reaches the carrier); a phone whose pool may, reaches it as +<number>', async () => {
    const lobby = await SipAgent.open('1002', 'p', sip.cm1!);
    const exec = await SipAgent.open('1001', 'p', sip.cm1!);
    agents.push(lobby, exec);
    assert.equal((await lobby.register()).status, 200);
    assert.equal((await exec.register()).status, 200);
    const refused = await lobby.invite('9011442079460000', { timeoutMs: 5000 });
    assert.equal(refused.final.status, 403, refused.final.reason);
    assert.doesNotMatch(kamailio.output(), /ROUTE INVITE sip:\+?442079460000@/, 'the carrier never saw it');
    const call = await exec.invite('9011442079460000', { timeoutMs: 6000 });
    assert.equal(call.final.status, 200, call.final.reason);
    assert.match(kamailio.output(), /ROUTE INVITE sip:\+442079460000@/, 'the carrier relayed the +E.164 number');
    assert.match(pstn.received.filter((r) => r.method === 'INVITE').at(-1)!.uri, /^sip:\+442079460000@/);
    assert.equal((await exec.bye(call)).status, 200);
    await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 3000, 'the call to end');
  });

  it("the carrier's server stops: OPTIONS marks it down, and calls go out through the route's next trunk at once", async () => {
    const phone = await SipAgent.open('1001', 'p', sip.cm1!);
    agents.push(phone);
    assert.equal((await phone.register()).status, 200);
    await kamailio.stop();
    await eventually(
      () =>
        cluster
          .node('cm1')
          .trunkViews()
          .find((t) => t.trunk === 'CARRIER')!.peers[0]!.up === false,
      6000,
      "CARRIER's peer down",
    );
    const t0 = Date.now();
    const call = await phone.invite('94155550001', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    assert.ok(Date.now() - t0 < 1500, `no wait for the dead server (${Date.now() - t0} ms)`);
    assert.match(backup.received.filter((r) => r.method === 'INVITE').at(-1)!.uri, /^sip:4155550001@/);
    assert.equal((await phone.bye(call)).status, 200);
  });
});
