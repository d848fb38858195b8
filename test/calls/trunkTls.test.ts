// A trunk over TLS (issue 21): two clusters joined by a trunk on each side
// with `transport: tls`, each naming the other by a DNS name (localhost, as
// /etc/hosts has it) and trusting the CA that signed the other's
// certificate (tls_ca). A phone of one calls a phone of the other: the far
// site takes the INVITE as its trunk's only because it came over TLS from
// the trunk's address (over UDP it would be challenged), audio both ways,
// and a hang-up from the far side comes back over the same connection. A trunk that trusts another CA sends
// nothing: the call fails and the far site never sees an INVITE.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generate } from 'selfsigned';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';
import { SipAgent, hearsTone, sdpMedia } from '../helpers/sipAgent.ts';

/** A self-signed certificate (its own CA) for localhost and 127.0.0.1, as PEM files in `dir`. */
async function certificate(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: name }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  writeFileSync(cert, pems.cert);
  writeFileSync(key, pems.private, { mode: 0o600 });
  return { cert, key };
}

describe('a trunk over TLS between two clusters', () => {
  let east: EmbeddedCluster;
  let west: EmbeddedCluster;
  const sip: Record<string, string> = {};
  const tlsPort: Record<string, number> = {};
  const agents: SipAgent[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tandem-trunk-tls-'));

  const agent = async (number: string, node: string) => {
    const a = await SipAgent.open(number, 'p', sip[node]!);
    a.codecs = [0];
    agents.push(a);
    assert.equal((await a.register()).status, 200);
    return a;
  };
  const calls = (c: EmbeddedCluster, node: string) => c.node(node).sip!.calls.calls();

  before(async () => {
    const eastPair = await certificate(dir, 'east');
    const westPair = await certificate(dir, 'west');
    const stranger = await certificate(dir, 'stranger');
    tlsPort.e1 = await freePort();
    tlsPort.w1 = await freePort();
    const withTls = (nodes: string, n: string) =>
      nodes.replace(new RegExp(`( {2}${n}: \\{ sip: "[^"]+")`), `$1, sip_tls: "127.0.0.1:${tlsPort[n]}"`);
    const eastNodes = withTls(await mediaNodes(['e1'], 54640, 20, sip), 'e1');
    const westNodes = withTls(await mediaNodes(['w1'], 54660, 20, sip), 'w1');
    east = await startCluster(
      `
cluster: { name: east }
${eastNodes}
device_pools: { DP: {} }
trunks:
  WEST:
    nodes: [e1]
    peers: ["localhost:${tlsPort.w1}"]
    transport: tls
    tls_ca: "${westPair.cert}"
    device_pool: DP
    codecs: [PCMU]
    options_ping_s: 0
dial_plan:
  route_patterns:
    - { pattern: "7.2XXX", route: [WEST], discard: predot }
phones:
  "1001": { node: e1, password: p, device_pool: DP, codecs: [PCMU] }
sip:
  tls: { cert: "${eastPair.cert}", key: "${eastPair.key}" }
`,
      { sip: true },
    );
    west = await startCluster(
      `
cluster: { name: west }
${westNodes}
device_pools: { DP: {} }
trunks:
  EAST:
    nodes: [w1]
    peers: ["localhost:${tlsPort.e1}"]
    transport: tls
    tls_ca: "${eastPair.cert}"
    device_pool: DP
    codecs: [PCMU]
    options_ping_s: 0
  IMPOSTOR:
    nodes: [w1]
    peers: ["127.0.0.1:${tlsPort.e1}"]
    transport: tls
    tls_ca: "${stranger.cert}"
    device_pool: DP
    codecs: [PCMU]
    setup_timeout_ms: 1000
    options_ping_s: 0
dial_plan:
  route_patterns:
    - { pattern: "7.1XXX", route: [EAST], discard: predot }
    - { pattern: "6.1XXX", route: [IMPOSTOR], discard: predot }
phones:
  "2001": { node: w1, password: p, device_pool: DP, codecs: [PCMU] }
sip:
  tls: { cert: "${westPair.cert}", key: "${westPair.key}" }
`,
      { sip: true },
    );
  });
  after(async () => {
    for (const a of agents) a.close();
    await east?.stop();
    await west?.stop();
  });

  it('west 2001 calls east 1001 over TLS: audio both ways; the far side hangs up over the same connection', async () => {
    const caller = await agent('2001', 'w1');
    const callee = await agent('1001', 'e1');
    const eastIn = east.node('e1').sip!.transport.stats.received;
    const call = await caller.invite('71001', { timeoutMs: 6000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const ringing = callee.received.filter((r) => r.method === 'INVITE').at(-1)!;
    assert.match(ringing.headers.get('from')!, /sip:2001@/);
    // The west node reached east's TLS port, and nothing else of east's: its connection is the one TLS one.
    assert.ok(east.node('e1').sip!.transport.connections >= 1, "a connection to east's TLS listener");
    assert.ok(east.node('e1').sip!.transport.stats.received > eastIn);
    const westHalf = calls(west, 'w1').find((c) => c.phone === 'EAST');
    assert.ok(westHalf, "west's trunk half");
    const toEast = await hearsTone(caller, sdpMedia(call.final.body), callee, 700);
    const toWest = await hearsTone(callee, sdpMedia(ringing.body), caller, 1100);
    assert.ok(toEast > 0.5 && toWest > 0.5, `audio both ways (${toEast.toFixed(2)}, ${toWest.toFixed(2)})`);
    assert.equal((await callee.requestInAnsweredCall('BYE')).status, 200);
    await eventually(() => caller.received.some((r) => r.method === 'BYE'), 3000, 'the west phone to get the BYE');
    await eventually(
      () => calls(west, 'w1').length === 0 && calls(east, 'e1').length === 0,
      3000,
      'both sites to end the call',
    );
  });

  it('east calls west the other way, over its own TLS connection to west', async () => {
    const caller = await agent('1001', 'e1');
    const callee = await agent('2001', 'w1');
    const call = await caller.invite('72001', { timeoutMs: 6000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const ringing = callee.received.filter((r) => r.method === 'INVITE').at(-1)!;
    const share = await hearsTone(callee, sdpMedia(ringing.body), caller, 900);
    assert.ok(share > 0.5, `east hears west (${share.toFixed(2)})`);
    assert.equal((await caller.bye(call)).status, 200);
    await eventually(
      () => calls(west, 'w1').length === 0 && calls(east, 'e1').length === 0,
      3000,
      'both sites to end the call',
    );
  });

  it("a trunk that trusts another CA: the server's certificate is refused, no INVITE reaches it, the call fails", async () => {
    const caller = await agent('2001', 'w1');
    const eastBefore = east.node('e1').sip!.transport.stats.received;
    const call = await caller.invite('61001', { timeoutMs: 8000 });
    assert.ok(call.final.status >= 400, `the call fails (${call.final.status})`);
    assert.equal(east.node('e1').sip!.transport.stats.received, eastBefore, 'east never read a message of it');
    assert.equal(calls(east, 'e1').length, 0);
  });
});
