// A half's state moves only forward: set up, ringing, answered, ended; an
// answer that comes after the end (a late 200 crossing our BYE) does not
// bring the half back, and a late 180 does not make an answered call ring.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HalfCall } from '../../src/calls/halfCall.ts';
import { parseConfig } from '../../src/config/load.ts';

function half(): HalfCall {
  const parsed = parseConfig(`
nodes: { cm1: { sip: "127.0.0.1:5060", admin: "127.0.0.1:8081" } }
device_pools: { P: {} }
phones: { "1001": { node: cm1, password: a, device_pool: P } }
`);
  assert.ok(parsed.ok);
  return new HalfCall('c1', 'caller', parsed.model.phones.get('1001')!, '2001', 'cm2', {
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
});
