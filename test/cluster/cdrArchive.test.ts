// Call detail records outlive their node (issue 22): on a NATS cluster each
// node writes its records to the cluster's JetStream stream too, so when a
// node is down any other node's search still finds its halves of calls,
// read back from the stream (the answer says which nodes came from it). Each
// node's NATS user may write only its own subject.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import { after, describe, it } from 'node:test';
import type { CallDetailRecord } from '../../src/cluster/messages.ts';
import { adminFetch } from '../helpers/admin.ts';
import { eventually } from '../helpers/cluster.ts';
import { useNatsNodes } from '../helpers/natsNodes.ts';
import { SipAgent } from '../helpers/sipAgent.ts';

describe('the call records archive on JetStream', () => {
  const fx = useNatsNodes({
    name: 'cdrarchive',
    nodes: ['cm1', 'cm2'],
    rtp: true,
    config: `
device_pools: { DP: {} }
phones:
  "1001": { node: cm1, password: a1, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: b2, device_pool: DP, codecs: [PCMU] }
`,
  });
  const agents: SipAgent[] = [];
  after(() => {
    for (const a of agents) a.close();
  });
  type Found = { records: CallDetailRecord[]; missing: string[]; archived: string[] };
  const search = async (node: string, q: string) =>
    (await (await adminFetch(`http://${fx.admin[node]}/api/cdrs?${q}`)).json()) as Found;

  it('a node that is down: its halves of calls are read from the stream by the others; the answer names it as archived', async () => {
    const caller = await SipAgent.open('1001', 'a1', fx.sip.cm1!);
    const callee = await SipAgent.open('2001', 'b2', fx.sip.cm2!);
    agents.push(caller, callee);
    assert.equal((await caller.register()).status, 200);
    assert.equal((await callee.register()).status, 200);
    await eventually(
      async () => {
        const r = await caller.invite('2001', { timeoutMs: 3000 });
        if (r.final.status !== 200) return false;
        await new Promise((res) => setTimeout(res, 300));
        assert.equal((await caller.bye(r)).status, 200);
        return true;
      },
      10_000,
      'a call from cm1 to cm2',
    );
    // Both halves, each from its own node while both are up.
    await eventually(async () => (await search('cm1', 'number=2001')).records.length === 2, 5000, 'both halves');
    const live = await search('cm1', 'number=2001');
    assert.deepEqual(live.archived, [], JSON.stringify(live));
    // cm2 dies: its half comes from the stream.
    fx.procs.get('cm2')!.kill('SIGKILL');
    await fx.procs.get('cm2')!.exited();
    const found = await search('cm1', 'number=2001');
    const logs = () =>
      fx.procs
        .get('cm1')!
        .output()
        .split('\n')
        .filter((l) => /archive|cdr/.test(l))
        .join('\n');
    assert.deepEqual(found.missing, [], logs());
    assert.deepEqual(found.archived, ['cm2']);
    const halves = found.records.map((r) => `${r.node} ${r.role} ${r.party}->${r.far}`).sort();
    assert.deepEqual(halves, ['cm1 caller 1001->2001', 'cm2 callee 2001->1001']);
    assert.ok(found.records.every((r) => r.answered_at !== null && r.duration_s >= 0));
    // With cm1's own NATS user and key (a stolen machine): cm2's records cannot be written.
    const nc1 = await connect({
      servers: fx.nats.url,
      reconnect: false,
      authenticator: nkeyAuthenticator(
        new Uint8Array(readFileSync(join(fx.dir, '.tandem', 'cdrarchive-keys', 'cm1.seed'))),
      ),
      inboxPrefix: '_INBOX_cm1',
    });
    try {
      const forged = new TextEncoder().encode(
        JSON.stringify({ ...found.records.find((r) => r.node === 'cm2')!, call: 'forged', far: '1001' }),
      );
      await assert.rejects(
        jetstream(nc1).publish('tandem.cdrarchive.cdr.cm2', forged, { timeout: 2000 }),
        /permissions violation|timeout/i,
      );
    } finally {
      await nc1.close();
    }
    // The same filters hold for archived records: another number finds none of cm2's.
    const none = await search('cm1', 'number=9999');
    assert.deepEqual(none.records, []);
    assert.deepEqual(none.archived, ['cm2']);
  });
});
