// The SIP side of a call manager against raw SIP over real sockets: the MRGL
// a phone hands over in X-Media-Resource-Group-List, bad input, unknown
// methods, requests outside any dialog, and SIP over TCP.
import { adminFetch } from '../helpers/admin.ts';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { eventually, startCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';
import { SipAgent } from '../helpers/sipAgent.ts';

describe('SIP server', () => {
  let cluster: EmbeddedCluster;
  let sip1: string;
  const agents: SipAgent[] = [];
  const agent = async (n: string, pw: string) => {
    const a = await SipAgent.open(n, pw, sip1);
    agents.push(a);
    return a;
  };
  const bridgeActive = async (name: string) =>
    (
      (await (await adminFetch(`${cluster.node('cm1').admin!.url}/api/resources`)).json()) as Array<{
        name: string;
        active: number;
      }>
    ).find((r) => r.name === name)!.active;

  before(async () => {
    sip1 = `127.0.0.1:${await freePort()}`;
    cluster = await startCluster(
      `
nodes:
  cm1: { sip: "${sip1}", admin: "127.0.0.1:${await freePort()}", rtp: { address: 127.0.0.1, ports: 41000-41999 } }
  cm2: { sip: "127.0.0.1:${await freePort()}", admin: "127.0.0.1:${await freePort()}", rtp: { address: 127.0.0.1, ports: 42000-42999 } }
media_resources:
  CF_A: { type: conference_bridge, node: cm1, capacity: 4 }
  CF_B: { type: conference_bridge, node: cm2, capacity: 4 }
media_resource_groups:
  GA: { devices: [CF_A] }
  GB: { devices: [CF_B] }
media_resource_group_lists:
  LA: [GA]
  LB: [GB]
device_pools:
  DP: { mrgl: LA }
phones:
  "1001": { node: cm1, password: pa, device_pool: DP }
  "1002": { node: cm1, password: pb, device_pool: DP }
sip: { conference_numbers: ["8xxx"] }
`,
      { sip: true, admin: true },
    );
  });
  after(async () => {
    for (const a of agents) a.close();
    await cluster.stop();
  });

  it('an MRGL named on REGISTER replaces the configured one; one named on INVITE holds for that call; unknown names are ignored', async () => {
    const a = await agent('1001', 'pa');
    assert.equal((await a.register([['X-Media-Resource-Group-List', 'LB']])).status, 200);
    const c1 = await a.invite('8001');
    assert.equal(c1.final.status, 200);
    const halves = cluster.node('cm1').sip!.calls.calls();
    assert.equal(halves[0]!.resources[0]!.resource, 'CF_B', 'the REGISTER header chose LB');
    // The trace says where the MRGL came from (it said "request" for every call before).
    const source = () => cluster.node('cm1').mrm.allocations()[0]!.trace.mrgl_source;
    assert.equal(source(), 'registration');
    await a.bye(c1);
    const c2 = await a.invite('8001', { extra: [['X-Media-Resource-Group-List', 'LA']] });
    assert.equal(
      cluster.node('cm1').sip!.calls.calls()[0]!.resources[0]!.resource,
      'CF_A',
      'the INVITE header wins for its call',
    );
    assert.equal(source(), 'request');
    await a.bye(c2);
    const b = await agent('1002', 'pb');
    assert.equal((await b.register()).status, 200);
    const c4 = await b.invite('8001');
    assert.equal(c4.final.status, 200);
    assert.equal(source(), 'device_pool', "no header: the device pool's MRGL, and the trace says so");
    await b.bye(c4);
    const c3 = await a.invite('8001', { extra: [['X-Media-Resource-Group-List', 'NO_SUCH']] });
    assert.equal(c3.final.status, 200);
    assert.equal(
      cluster.node('cm1').sip!.calls.calls()[0]!.resources[0]!.resource,
      'CF_B',
      'unknown name ignored: the registered MRGL stays',
    );
    await a.bye(c3);
    await eventually(async () => (await bridgeActive('CF_A')) === 0, 2000, 'bridges released');
  });

  it('rejects wrong passwords on REGISTER and on INVITE (407 challenge)', async () => {
    const a = await agent('1002', 'wrong');
    const r = await a.register();
    assert.equal(r.status, 401);
    const b = await agent('1002', 'pb');
    assert.equal((await b.register()).status, 200);
    const denied = await b.invite('8009', { password: 'wrong' });
    assert.equal(denied.final.status, 407, 'a wrong INVITE password is challenged again, never let through');
    assert.equal(cluster.node('cm1').sip!.calls.calls().length, 0);
    const ok = await b.invite('8009');
    assert.equal(ok.final.status, 200);
    await b.bye(ok);
  });

  it('answers malformed requests with 400 and a reason, unknown methods with 501, known but unsupported with 405, strays with 481', async () => {
    const a = await agent('1002', 'pb');
    const head = (method: string, callId: string, cseq = `1 ${method}`) =>
      `${method} sip:x@${sip1} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${a.port};branch=z9hG4bK${callId}\r\nFrom: <sip:1002@x>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: ${callId}\r\nCSeq: ${cseq}\r\nMax-Forwards: 70\r\n`;
    let wait = a.nextResponse('bad-cseq');
    a.sendRaw(`${head('OPTIONS', 'bad-cseq', '1 INVITE')}Content-Length: 0\r\n\r\n`);
    let r = await wait;
    assert.equal(r.status, 400);
    assert.match(r.headers.get('warning')!, /CSeq method INVITE does not match/);
    wait = a.nextResponse('bad-len');
    a.sendRaw(`${head('OPTIONS', 'bad-len')}Content-Length: 500\r\n\r\nshort`);
    assert.equal((await wait).status, 400);
    wait = a.nextResponse('foo');
    a.sendRaw(`${head('FOO', 'foo')}Content-Length: 0\r\n\r\n`);
    r = await wait;
    assert.equal(r.status, 501);
    // Allow is the method table's: every method a node takes, and the transaction layer's ACK and CANCEL.
    assert.deepEqual(r.headers.get('allow')!.split(', ').sort(), [
      'ACK',
      'BYE',
      'CANCEL',
      'INFO',
      'INVITE',
      'OPTIONS',
      'REFER',
      'REGISTER',
    ]);
    wait = a.nextResponse('sub');
    a.sendRaw(`${head('SUBSCRIBE', 'sub')}Content-Length: 0\r\n\r\n`);
    assert.equal((await wait).status, 405);
    // A known in-dialog method that is not taken, outside any dialog: the stranger learns no more than 481.
    wait = a.nextResponse('upd');
    a.sendRaw(`${head('UPDATE', 'upd')}Content-Length: 0\r\n\r\n`);
    assert.equal((await wait).status, 481);
    wait = a.nextResponse('stray');
    a.sendRaw(`${head('BYE', 'stray').replace('To: <sip:x@y>', 'To: <sip:x@y>;tag=nosuch')}Content-Length: 0\r\n\r\n`);
    assert.equal((await wait).status, 481);
    wait = a.nextResponse('big');
    a.sendRaw(`${head('OPTIONS', 'big')}Content-Length: 40000\r\n\r\n${'x'.repeat(40_000)}`);
    assert.equal((await wait).status, 513);
    wait = a.nextResponse('opt');
    a.sendRaw(`${head('OPTIONS', 'opt')}Content-Length: 0\r\n\r\n`);
    r = await wait;
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('accept'), 'application/sdp');
  });

  it('drops unparseable datagrams and survives a burst of garbage', async () => {
    const a = await agent('1002', 'pb');
    const t = cluster.node('cm1').sip!.transport;
    const before = { ...t.stats };
    for (let i = 0; i < 300; i++) {
      a.sendRaw(Buffer.from(Array.from({ length: 1 + (i % 200) }, (_, j) => (i * 31 + j * 7 + 1) % 256)));
      if (i % 25 === 0) await new Promise((r) => setTimeout(r, 5)); // UDP: don't overrun the socket buffer
    }
    a.sendRaw('INVITE sip:a SIP/2.0\r\n\r\n');
    await new Promise((r) => setTimeout(r, 300));
    const got = t.stats.received - before.received;
    assert.ok(got >= 250, `only ${got} of 301 datagrams arrived`);
    // Every one of them was garbage, counted as such, and none was answered.
    assert.equal(t.stats.malformed - before.malformed, got);
    assert.equal(t.stats.sent, before.sent);
    assert.equal((await a.register()).status, 200, 'still registers after the garbage');
  });

  it('takes CRLF keep-alives silently: nothing answered or counted as bad over UDP, a CRLF pong to a double-CRLF ping over TCP', async () => {
    const a = await agent('1002', 'pb');
    const t = cluster.node('cm1').sip!.transport;
    const before = { ...t.stats };
    for (const ka of ['\r\n', '\r\n\r\n', '\n']) a.sendRaw(ka);
    await eventually(() => t.stats.keepAlives - before.keepAlives === 3, 2000, 'three keep-alives');
    assert.equal(t.stats.malformed, before.malformed);
    assert.equal(t.stats.sent, before.sent);
    const [host, port] = sip1.split(':') as [string, string];
    const sock = connect(Number(port), host);
    await new Promise((r) => sock.once('connect', r));
    const pong = new Promise<string>((resolve) => sock.once('data', (d) => resolve(d.toString())));
    sock.write('\r\n\r\n');
    assert.equal(await pong, '\r\n');
    sock.destroy();
    assert.equal(t.stats.malformed, before.malformed);
  });

  it('speaks SIP over TCP too', async () => {
    const [host, port] = sip1.split(':') as [string, string];
    const sock = connect(Number(port), host);
    const reply = new Promise<string>((resolve) => {
      let got = '';
      sock.on('data', (d) => {
        got += d.toString();
        if (got.includes('\r\n\r\n')) resolve(got);
      });
    });
    await new Promise((r) => sock.once('connect', r));
    sock.write(
      `OPTIONS sip:${sip1} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKtcp1\r\nFrom: <sip:t@x>;tag=1\r\nTo: <sip:${sip1}>\r\nCall-ID: tcp1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`,
    );
    assert.match(await reply, /^SIP\/2\.0 200 OK\r\n/);
    sock.destroy();
  });

  it('retransmits an unanswered INVITE (timer A) and a 2xx until its ACK arrives', async () => {
    const caller = await agent('1001', 'pa');
    const callee = await agent('1002', 'pb');
    assert.equal((await caller.register()).status, 200);
    assert.equal((await callee.register()).status, 200);
    callee.autoAnswer = false;
    const ringing = caller.invite('1002', { timeoutMs: 10_000 }).catch(() => undefined);
    // T1 = 500 ms: copies at 0, 0.5 and 1.5 s.
    await eventually(
      () => callee.received.filter((r) => r.method === 'INVITE').length >= 3,
      2500,
      'INVITE retransmissions',
    );
    const invites = callee.received.filter((r) => r.method === 'INVITE');
    assert.equal(new Set(invites.map((r) => r.headers.get('via'))).size, 1, 'the same transaction (same branch)');
    // Now the callee answers and the caller withholds its ACK: our 200 comes again and again.
    callee.autoAnswer = true;
    callee.answer(invites[0]!, { address: '127.0.0.1', port: Number(sip1.split(':')[1]) });
    const call = await ringing;
    assert.ok(call && call.final.status === 200);
    // A call whose caller withholds the ACK: our 200 is sent again and again until the ACK.
    await caller.bye(call);
    const c2 = caller.invite('1002', { noAck: true });
    const second = await c2;
    await eventually(
      () => caller.responses.filter((r) => r.status === 200 && r.headers.get('call-id') === second.callId).length >= 3,
      2500,
      '200 retransmissions',
    );
    caller.ack(second);
    await new Promise((r) => setTimeout(r, 1200));
    const settled = caller.responses.filter(
      (r) => r.status === 200 && r.headers.get('call-id') === second.callId,
    ).length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(
      caller.responses.filter((r) => r.status === 200 && r.headers.get('call-id') === second.callId).length,
      settled,
      'the ACK stopped the retransmissions',
    );
    await caller.bye(second);
  });

  it('refuses REGISTER intervals below min_expires with 423; expires 0 removes the binding everywhere', async () => {
    const a = await agent('1001', 'pa');
    const short = await a.register([], 5);
    assert.equal(short.status, 423);
    assert.equal(short.headers.get('min-expires'), '60');
    assert.equal((await a.register([], 120)).status, 200);
    const seen = async (node: string) =>
      (
        (await (await adminFetch(`${cluster.node(node).admin!.url}/api/phones`)).json()) as Array<{
          number: string;
          sip_registration: unknown;
        }>
      ).find((p) => p.number === '1001')!.sip_registration;
    await eventually(async () => (await seen('cm2')) != null, 2000, 'cm2 to see the binding');
    assert.equal((await a.register([], 0)).status, 200);
    await eventually(
      async () => (await seen('cm2')) == null && (await seen('cm1')) == null,
      2000,
      'binding gone on every node',
    );
  });

  it("a binding carries since when it holds (a refresh keeps it, a new contact starts it again) and the phone's User-Agent, printable and short", async () => {
    const a = await agent('1002', 'pb');
    const reg = async () =>
      (
        (await (await adminFetch(`${cluster.node('cm2').admin!.url}/api/phones`)).json()) as Array<{
          number: string;
          sip_registration: { since?: number; user_agent?: string; expires_at: number } | null;
        }>
      ).find((p) => p.number === '1002')!.sip_registration;
    const ua = `Phone\u0007 X/1.0 ${'y'.repeat(200)}`;
    assert.equal((await a.register([['user-agent', ua]], 120)).status, 200);
    await eventually(async () => (await reg())?.user_agent !== undefined, 2000, 'cm2 to see the binding');
    const first = (await reg())!;
    assert.equal(
      first.user_agent,
      `Phone X/1.0 ${'y'.repeat(200)}`.slice(0, 128),
      'control characters out, 128 at most',
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await a.register([['user-agent', 'Phone X/1.1']], 120)).status, 200);
    await eventually(async () => (await reg())?.user_agent === 'Phone X/1.1', 2000, 'the refresh seen');
    assert.equal((await reg())!.since, first.since, 'a refresh keeps since');
    // The same phone from another address: a new binding, a new since.
    const moved = await agent('1002', 'pb');
    assert.equal((await moved.register([], 120)).status, 200);
    await eventually(async () => ((await reg())?.since ?? 0) > first.since!, 2000, 'a new since for the new contact');
    assert.equal((await moved.register([], 0)).status, 200);
  });

  it('a conference number runs on one bridge cluster-wide: a later participant joins it whatever its MRGL says', async () => {
    const a = await agent('1001', 'pa');
    const b = await agent('1002', 'pb');
    assert.equal((await a.register([['X-Media-Resource-Group-List', 'LB']])).status, 200); // LB: CF_B on cm2
    assert.equal((await b.register()).status, 200); // its pool's LA: CF_A on cm1
    const ca = await a.invite('8050');
    assert.equal(ca.final.status, 200);
    await eventually(
      () => cluster.node('cm1').devices.lookup('conf-8050').registered,
      2000,
      'room conf-8050 in the mapping table',
    );
    const cb = await b.invite('8050');
    assert.equal(cb.final.status, 200);
    const bridges = cluster
      .node('cm1')
      .sip!.calls.calls()
      .map((h) => [h.phone, h.resources[0]!.resource]);
    assert.deepEqual(bridges.sort(), [
      ['1001', 'CF_B'],
      ['1002', 'CF_B'],
    ]);
    await a.bye(ca);
    await b.bye(cb);
    await eventually(
      () => !cluster.node('cm1').devices.lookup('conf-8050').registered,
      3000,
      'room gone when the last one left',
    );
  });
});
