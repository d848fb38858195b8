// The worked example of two sites (README, docs/trunks.md), as an operator
// runs it: `npm start` (examples/acme.yaml: HQ and the branch) and, beside
// it, `tandem start -c examples/acme-london.yaml` (London, a cluster of its
// own), each a process with its own bus. A London phone (PCMA) calls an HQ
// phone (PCMU) through the trunks; G.722 between the sites, a transcoder
// from each side's own MRGL, audio both ways; then the other way round.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { eventually } from './helpers/cluster.ts';
import { start, type Proc } from './helpers/proc.ts';
import { SipAgent, hearsTone, sdpMedia } from './helpers/sipAgent.ts';

describe('the two-site example: HQ and London joined by a trunk', () => {
  let hq: Proc;
  let london: Proc;
  const agents: SipAgent[] = [];
  const phone = async (number: string, password: string, at: string, codecs: Array<0 | 8>) => {
    const a = await SipAgent.open(number, password, at);
    a.codecs = codecs;
    agents.push(a);
    assert.equal((await a.register()).status, 200);
    return a;
  };
  /** the devices in a site's node's calls, over its admin API */
  const devicesIn = async (admin: string, tokenFile: string) => {
    const token = readFileSync(tokenFile, 'utf8').trim();
    const res = await fetch(`http://${admin}/api/calls`, { headers: { authorization: `Bearer ${token}` } });
    const calls = (await res.json()) as Array<{ resources: Array<{ resource: string }> }>;
    return calls.flatMap((c) => c.resources.map((r) => r.resource));
  };

  before(async () => {
    hq = start('npm', ['start', '--silent', '--', '--log-level', 'warn'], {}, { group: true });
    london = start(
      'node',
      ['--import', 'tsx', 'src/cli.ts', 'start', '-c', 'examples/acme-london.yaml', '--log-level', 'warn'],
      {},
      { group: true },
    );
    await Promise.all([hq.waitFor(/3 call manager\(s\) up/, 60_000), london.waitFor(/1 call manager\(s\) up/, 60_000)]);
  });
  after(async () => {
    for (const a of agents) a.close();
    for (const p of [hq, london]) p?.kill('SIGTERM');
    await Promise.all([hq?.exited(), london?.exited()]);
  });

  it('London 4001 (PCMA) dials 61002, HQ 1002 (PCMU): a transcoder on each side, audio both ways', async () => {
    const caller = await phone('4001', 'ldn4001pw', '127.0.0.1:5160', [8]);
    const callee = await phone('1002', 'ny1002pw', '127.0.0.1:5060', [0]);
    const call = await caller.invite('61002', { timeoutMs: 8000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const ringing = callee.received.filter((r) => r.method === 'INVITE').at(-1)!;
    assert.match(ringing.headers.get('from')!, /sip:4001@/, 'HQ sees the London number');
    assert.deepEqual(await devicesIn('127.0.0.1:8091', 'examples/.tandem/acme-london.admin-token'), ['XCODE_LDN']);
    assert.deepEqual(await devicesIn('127.0.0.1:8081', 'examples/.tandem/acme.admin-token'), ['XCODE_EAST_1']);
    const toHq = await hearsTone(caller, sdpMedia(call.final.body), callee, 700);
    const toLondon = await hearsTone(callee, sdpMedia(ringing.body), caller, 1100);
    assert.ok(toHq > 0.5 && toLondon > 0.5, `audio both ways (${toHq.toFixed(2)}, ${toLondon.toFixed(2)})`);
    assert.equal((await caller.bye(call)).status, 200);
    await eventually(() => callee.received.some((r) => r.method === 'BYE'), 3000, 'HQ phone to get the BYE');
  });

  it('HQ 1002 dials 64001 in London, the other way round', async () => {
    const caller = await phone('1002', 'ny1002pw', '127.0.0.1:5060', [0]);
    const callee = await phone('4001', 'ldn4001pw', '127.0.0.1:5160', [8]);
    const call = await caller.invite('64001', { timeoutMs: 8000 });
    assert.equal(call.final.status, 200, call.final.reason);
    const ringing = callee.received.filter((r) => r.method === 'INVITE').at(-1)!;
    const share = await hearsTone(caller, sdpMedia(call.final.body), callee, 900);
    const back = await hearsTone(callee, sdpMedia(ringing.body), caller, 500);
    assert.ok(share > 0.5 && back > 0.5, `audio both ways (${share.toFixed(2)}, ${back.toFixed(2)})`);
    assert.equal((await callee.requestInAnsweredCall('BYE')).status, 200);
    await eventually(() => caller.received.some((r) => r.method === 'BYE'), 3000, 'the HQ phone to get the BYE');
  });
});
