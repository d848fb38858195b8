// A half's state moves only forward: set up, ringing, answered, ended; an
// answer that comes after the end (a late 200 crossing our BYE) does not
// bring the half back, and a late 180 does not make an answered call ring.
// What a role keeps while its call is set up belongs to that role only, and
// a half given another call (transfer, conference down to two) starts it
// afresh.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallTable } from '../../src/calls/callTable.ts';
import { HalfCall, HalfRoleError } from '../../src/calls/halfCall.ts';
import type { ServerTransaction } from '../../src/sip/transactions.ts';
import { parseConfig } from '../../src/config/load.ts';

function half(role: ConstructorParameters<typeof HalfCall>[1] = 'caller'): HalfCall {
  const parsed = parseConfig(`
nodes: { cm1: { sip: "127.0.0.1:5060", admin: "127.0.0.1:8081" } }
device_pools: { P: {} }
phones: { "1001": { node: cm1, password: a, device_pool: P } }
`);
  assert.ok(parsed.ok);
  return new HalfCall('c1', role, parsed.model.phones.get('1001')!, '2001', 'cm2', {
    mrgl: undefined,
    source: 'none',
  } as HalfCall['mrgl']);
}

describe('half call state', () => {
  it('moves forward only, and keeps the time of the first answer', async () => {
    const h = half();
    assert.equal(h.state, 'setup');
    assert.equal(h.ring(), true);
    assert.equal(h.ring(), true, 'a second 180 is still ringing');
    assert.equal(h.answer(), true);
    const at = h.answeredAt;
    assert.ok(at !== undefined);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(h.answer(), true, 'a re-answer');
    assert.equal(h.answeredAt, at, 'talk time starts at the first answer');
    assert.equal(h.ring(), false, 'an answered call does not ring again');
    assert.equal(h.state, 'up');
    assert.equal(h.end(), true);
    assert.equal(h.end(), false, 'ended once');
    assert.equal(h.answer(), false, 'a late answer does not bring it back');
    assert.equal(h.ring(), false);
    assert.equal(h.state, 'ended');
  });

  it('a call can end before it rang or was answered, without an answer time', () => {
    const h = half();
    assert.equal(h.end(), true);
    assert.equal(h.answeredAt, undefined);
    assert.equal(h.answer(), false);
  });

  it("keeps a role's set-up state to that role: a callee-only step on a caller's half is a named error", () => {
    const h = half();
    assert.equal(h.role, 'caller');
    assert.equal(h.callee, undefined);
    assert.equal(h.caller?.delayedOffer, false);
    assert.throws(() => h.as('callee'), HalfRoleError);
    const c = half('callee');
    assert.equal(c.as('callee').cancelWanted, false);
    assert.equal(c.caller, undefined);
  });

  it('a half given another call starts it afresh, and the call table follows', () => {
    const invite = { request: {} } as unknown as ServerTransaction;
    const h = half({ role: 'caller', invite, delayedOffer: true });
    h.codecRetried = true;
    h.srtpRetried = true;
    const table = new CallTable();
    table.track(h);
    assert.equal(table.forInvite(invite), h);
    table.rekey(h, { call: 'c2', role: 'callee', far: '3001', peerNode: 'cm3' });
    assert.equal(h.key, 'c2/callee');
    assert.equal(table.get('c1/caller'), undefined);
    assert.equal(table.get('c2/callee'), h);
    assert.equal(table.forInvite(invite), undefined, "the old call's INVITE no longer finds it");
    assert.deepEqual(h.as('callee'), { role: 'callee', gotProvisional: false, cancelWanted: false });
    assert.equal(h.codecRetried, false, 'the retries of a call are made again for the new one');
    assert.equal(h.srtpRetried, false);
    assert.equal([h.far, h.peerNode].join(), '3001,cm3');
  });

  it('hold, and a seat in a conference room, through the intents only', () => {
    const h = half();
    h.phoneHolds('sendonly');
    assert.equal(h.holding, true);
    h.phoneHolds('sendrecv');
    assert.equal(h.holding, false);
    h.heldByFar(true);
    assert.equal(h.held, true);
    h.joinRoom('adhoc-1', 'cm1', '8000');
    assert.deepEqual(h.conference, { room: 'adhoc-1', owner: 'cm1' });
    assert.equal(h.held, false, 'a seat is not a held call');
    assert.equal(h.peerNode, undefined, 'the bridge is its far end');
    assert.equal(h.far, '8000');
    h.roomTakenOverBy('cm2');
    assert.deepEqual(h.conference, { room: 'adhoc-1', owner: 'cm2' });
    h.leaveRoom();
    assert.equal(h.conference, undefined);
  });
});
