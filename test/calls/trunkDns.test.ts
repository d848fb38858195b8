// A trunk whose peer is a DNS name (issue 21): the node looks its servers up
// at a real DNS server on loopback (sip.dns_servers) by SRV, tries them in
// the records' order (a silent first server gives way to the next), takes
// calls in from the addresses found, shows the servers in its trunk view,
// follows the records when they change, and keeps the servers it found when
// DNS stops answering.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { DnsServer } from '../helpers/dnsServer.ts';
import { SipAgent, hearsTone, sdpMedia } from '../helpers/sipAgent.ts';

describe('a trunk whose peer is a DNS name (SRV)', () => {
  let cluster: EmbeddedCluster;
  let dns: DnsServer;
  const sip: Record<string, string> = {};
  const agents: SipAgent[] = [];
  /** the SRV's first target: takes datagrams, never answers */
  let dead: Socket;
  let deadInvites = 0;
  let carrier: SipAgent;
  let carrier2: SipAgent;

  const agent = async (number: string) => {
    const a = await SipAgent.open(number, 'p', sip.cm1!);
    agents.push(a);
    assert.equal((await a.register()).status, 200);
    return a;
  };
  const invites = (a: SipAgent) =>
    a.received.filter((r) => r.method === 'INVITE' && !/;\s*tag=/.test(r.headers.get('to') ?? ''));
  const srv = (primary: number, secondary: number) => [
    { target: 'sbc-a.carrier.test', port: primary, priority: 10, weight: 0 },
    { target: 'sbc-b.carrier.test', port: secondary, priority: 20, weight: 0 },
  ];

  before(async () => {
    dead = createSocket('udp4');
    dead.on('message', (m) => m.toString().startsWith('INVITE ') && deadInvites++);
    await new Promise<void>((r) => dead.bind(0, '127.0.0.1', () => r()));
    const nodes = await mediaNodes(['cm1'], 54600, 40, sip);
    carrier = await SipAgent.open('5550000', 'x', sip.cm1!);
    carrier2 = await SipAgent.open('5550001', 'x', sip.cm1!);
    agents.push(carrier, carrier2);
    dns = await DnsServer.open({
      a: { 'sbc-a.carrier.test': ['127.0.0.1'], 'sbc-b.carrier.test': ['127.0.0.1'] },
      srv: { '_sip._udp.carrier.test': srv(dead.address().port, carrier.port) },
    });
    cluster = await startCluster(
      `
${nodes}
device_pools: { DP: {} }
trunks:
  CARRIER:
    nodes: [cm1]
    peers: ["carrier.test"]
    device_pool: DP
    setup_timeout_ms: 500
    options_ping_s: 0
    inbound: { "5550100": "1001" }
dial_plan:
  route_patterns:
    - { pattern: "9.XXXX", route: [CARRIER], discard: predot }
phones:
  "1001": { node: cm1, password: p, device_pool: DP, codecs: [PCMU] }
sip:
  dns_servers: ["${dns.address}"]
`,
      { sip: true },
    );
  });
  after(async () => {
    for (const a of agents) a.close();
    dead?.close();
    dns?.close();
    await cluster?.stop();
  });

  it("calls go to the SRV's servers in priority order, by name in the Request-URI; a silent first one gives way to the next", async () => {
    assert.ok(dns.asked.includes('SRV _sip._udp.carrier.test'), 'the node asked the configured DNS server');
    const phone = await agent('1001');
    const call = await phone.invite('91234', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    assert.ok(deadInvites >= 1, 'the priority-10 server was tried first');
    const inv = invites(carrier).at(-1)!;
    assert.equal(inv.uri, `sip:1234@sbc-b.carrier.test:${carrier.port}`, "the server's name in the Request-URI");
    const share = await hearsTone(phone, sdpMedia(call.final.body), carrier, 700);
    assert.ok(share > 0.5, `the carrier hears the phone (${share.toFixed(2)})`);
    assert.equal((await phone.bye(call)).status, 200);
    await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 3000, 'the call to end');
    const view = cluster.node('cm1').trunkViews()[0]!;
    assert.deepEqual(
      view.peers.map((p) => p.peer),
      [`carrier.test (127.0.0.1:${dead.address().port})`, `carrier.test (127.0.0.1:${carrier.port})`],
    );
  });

  it("a call in from a server the name led to is the trunk's (no challenge), to its DID", async () => {
    const phone = await agent('1001');
    const call = await carrier.invite('5550100', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    assert.match(
      phone.received
        .filter((r) => r.method === 'INVITE')
        .at(-1)!
        .headers.get('from')!,
      /sip:5550000@/,
    );
    assert.equal((await carrier.bye(call)).status, 200);
    await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 3000, 'the call to end');
    // From an address the name does not lead to, the same INVITE is a stranger's: challenged, never rings.
    const stranger = await SipAgent.open('5550002', 'x', sip.cm1!);
    agents.push(stranger);
    const rang = phone.received.filter((r) => r.method === 'INVITE').length;
    const refused = await stranger.invite('5550100', { timeoutMs: 3000 });
    assert.notEqual(refused.final.status, 200);
    assert.equal(phone.received.filter((r) => r.method === 'INVITE').length, rang, 'the phone never rang');
  });

  it('the records change: the next lookup follows them; DNS gone: the servers found before are kept', async () => {
    dns.zone.srv!['_sip._udp.carrier.test'] = srv(carrier2.port, dead.address().port);
    await cluster.node('cm1').sip!.trunkPeers.refresh();
    const phone = await agent('1001');
    const call = await phone.invite('91235', { timeoutMs: 5000 });
    assert.equal(call.final.status, 200, call.final.reason);
    assert.equal(invites(carrier2).length, 1, 'the new first server took the call');
    assert.equal((await phone.bye(call)).status, 200);
    await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 3000, 'the call to end');
    dns.close();
    await cluster.node('cm1').sip!.trunkPeers.refresh();
    const again = await phone.invite('91236', { timeoutMs: 5000 });
    assert.equal(again.final.status, 200, 'the servers found before are kept while DNS does not answer');
    assert.equal(invites(carrier2).length, 2);
    assert.equal((await phone.bye(again)).status, 200);
    await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 3000, 'the calls to end');
  });
});
