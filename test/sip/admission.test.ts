// Admission control at the SIP door: a new INVITE that waited longer than
// sip.max_queue_delay_ms before the node could read it is refused at once
// (503 with Retry-After, no transaction kept), while what belongs to calls in
// progress (a BYE) is handled as usual, and new calls are admitted again as
// soon as the node keeps up. The wait is made real: the node runs in this
// process, its SIP socket receives the datagrams while this process's event
// loop is held busy (as a long task or collection would hold it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually } from '../helpers/cluster.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';

/** Holds this process's event loop busy, as an overloaded node's would be. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('admission control: new calls that waited too long are refused at once', () => {
  const fx = useSipCluster({
    nodes: ['cm1'],
    firstRtpPort: 53100,
    span: 40,
    config: () => `
cluster: { name: admission }
sip: { max_queue_delay_ms: 100 }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: a, device_pool: DP }
  "1002": { node: cm1, password: b, device_pool: DP }
`,
  });
  const refused = () => fx.cluster.node('cm1').sip!.authenticator.setupsRefused.queue_delay;

  it('503 Retry-After to an INVITE read after a 400 ms stall; the BYE of a call in progress is answered; new calls go through after', async () => {
    const [a] = await Promise.all([fx.phone('1001', 'a', 'cm1'), fx.phone('1002', 'b', 'cm1')]);
    const first = await a.invite('1002');
    assert.equal(first.final.status, 200, 'a call before the stall');
    const before = refused();

    // Both datagrams reach the node's socket at once (dgram sends on the next tick); the node reads them only after the stall.
    const second = a.invite('1002', { timeoutMs: 3000 });
    const bye = a.bye(first);
    process.nextTick(() => busy(400));
    const [late, byeAnswer] = await Promise.all([second, bye]);
    assert.equal(late.final.status, 503, `${late.final.status} ${late.final.reason}`);
    assert.match(late.final.reason, /overloaded/);
    assert.equal(late.final.headers.get('retry-after'), '1');
    assert.equal(byeAnswer.status, 200, 'the call in progress ends as asked');
    assert.equal(refused(), before + 1);
    // The first call's halves go once the BYE is through; the refused one never had any.
    await eventually(() => fx.cluster.node('cm1').sip!.calls.calls().length === 0, 2000, 'no call left on cm1');

    // The node keeps up again: the next call is admitted.
    const third = await a.invite('1002');
    assert.equal(third.final.status, 200, `${third.final.status} ${third.final.reason}`);
    assert.equal((await a.bye(third)).status, 200);
    assert.equal(refused(), before + 1);
    // offered = admitted + refused (what /metrics says as tandem_call_setups_total)
    const setups = fx.cluster.node('cm1').sip!.authenticator.setups;
    assert.equal(setups.offered - setups.admitted, refused());
    assert.ok(setups.admitted >= 4, `${setups.admitted} admitted (two challenged INVITEs per call)`);
  });
});

describe('admission control: beyond sip.max_setups_in_progress new calls are refused at once', () => {
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2'],
    firstRtpPort: 53200,
    span: 40,
    config: () => `
cluster: { name: setups }
sip: { max_setups_in_progress: 1 }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: a, device_pool: DP }
  "1002": { node: cm1, password: b, device_pool: DP }
  "2001": { node: cm2, password: c, device_pool: DP }
`,
  });
  const refused = () => fx.cluster.node('cm1').sip!.authenticator.setupsRefused.setups_over_limit;

  it('a call whose callee node hangs holds the one setup; a second caller gets 503 at once; calls go through once it is over', async () => {
    const [a, b] = await Promise.all([
      fx.phone('1001', 'a', 'cm1'),
      fx.phone('1002', 'b', 'cm1'),
      fx.phone('2001', 'c', 'cm2'),
    ]);
    // cm2 hangs: the setup signal to it gets no answer, so 1001's setup stays in progress until it times out.
    fx.cluster.buses.get('cm2')!.dropRequests = true;
    const stuck = a.invite('2001', { timeoutMs: 15_000 });
    await eventually(() => fx.cluster.node('cm1').sip!.calls.setupsInProgress === 1, 5000, "1001's setup in progress");
    const t0 = performance.now();
    const second = await b.invite('2001');
    assert.equal(second.final.status, 503, `${second.final.status} ${second.final.reason}`);
    assert.match(second.final.reason, /too many calls being set up/);
    assert.ok(performance.now() - t0 < 1000, 'refused at once');
    assert.equal(refused(), 1);
    // cm2 answers again; the stuck setup ends (503, unreachable), and the next call goes through.
    fx.cluster.buses.get('cm2')!.dropRequests = false;
    assert.equal((await stuck).final.status, 503);
    assert.equal(fx.cluster.node('cm1').sip!.calls.setupsInProgress, 0);
    const third = await b.invite('2001');
    assert.equal(third.final.status, 200, `${third.final.status} ${third.final.reason}`);
    assert.equal((await b.bye(third)).status, 200);
  });
});
