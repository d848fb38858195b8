// A second SIP stack: linphone over TCP. In-dialog requests must reach it
// and come from it over its connection (Tandem's Contact says transport=tcp):
// hold, resume and hang-up from the linphone side, and a BYE from the far
// side that linphone must receive over TCP.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { Linphone } from '../helpers/linphone.ts';
import { freePort } from '../helpers/ports.ts';
import { SipAgent } from '../helpers/sipAgent.ts';

describe('linphone (a second SIP stack) over TCP', () => {
  let cluster: EmbeddedCluster;
  const sip: Record<string, string> = {};
  let lp: Linphone | undefined;
  let agent: SipAgent | undefined;
  const calls = () => cluster.node('cm1').sip!.calls.calls();

  before(async () => {
    const nodes = await mediaNodes(['cm1'], 49400, 100, sip);
    cluster = await startCluster(
      `
cluster: { name: lp }
${nodes}
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: pw1001, device_pool: DP }
  "1002": { node: cm1, password: pw1002, device_pool: DP }
`,
      { sip: true, admin: false },
    );
    lp = await Linphone.start({
      number: '1001',
      password: 'pw1001',
      realm: 'lp',
      registrar: sip.cm1!,
      transport: 'tcp',
      sipPort: await freePort(),
      rtpPort: 49600,
      autoAnswer: true,
    });
    await eventually(
      () => cluster.node('cm1').phones.get('1001')!.snapshot().registration?.transport === 'TCP',
      15_000,
      'linphone registered over TCP',
    );
    agent = await SipAgent.open('1002', 'pw1002', sip.cm1!);
    assert.equal((await agent.register()).status, 200);
  });
  after(async () => {
    await lp?.stop();
    agent?.close();
    await cluster.stop();
  });

  it('calls out over TCP, holds, resumes and hangs up from its side', async () => {
    const m = lp!.mark;
    lp!.command('call sip:1002@127.0.0.1');
    await lp!.waitFor(/Call \d+ with sip:1002@\S+ connected/, 10_000, m);
    await eventually(() => calls().length === 2 && calls().every((c) => c.state === 'up'), 5000, 'both halves up');
    lp!.command('pause');
    await lp!.waitFor(/is now paused/, 10_000, m);
    await eventually(() => calls().find((c) => c.phone === '1001')?.holding === true, 5000, 'Tandem sees 1001 holding');
    lp!.command('resume');
    await eventually(
      () => calls().find((c) => c.phone === '1001')?.holding === false,
      5000,
      'Tandem sees the call resumed',
    );
    lp!.command('terminate');
    await lp!.waitFor(/ended/, 10_000, m);
    await eventually(() => calls().length === 0, 5000, 'the call gone from Tandem');
    // (the BYE datagram may still be on its way when the half is gone from the table)
    await eventually(() => agent!.received.some((r) => r.method === 'BYE'), 2000, 'the far end to get the BYE');
  });

  it('takes a call over TCP and hears the far end hang up (the BYE reaches it over its connection)', async () => {
    const m = lp!.mark;
    const call = await agent!.invite('1001');
    assert.equal(call.final.status, 200);
    await lp!.waitFor(/Call \d+ with \S+ connected/, 10_000, m);
    assert.equal((await agent!.bye(call)).status, 200);
    await lp!.waitFor(/ended/, 10_000, m);
    await eventually(() => calls().length === 0, 5000, 'the call gone from Tandem');
  });
});
