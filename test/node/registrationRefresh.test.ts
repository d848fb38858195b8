// A REGISTER refresh is written to the mapping table (every node receives
// each write) only when it changes the binding or the expiry published would
// otherwise run out before the phone's next refresh.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Registration } from '../../src/devices/phoneProcess.ts';
import { quietRefresh } from '../../src/node/callManager.ts';

const now = 1_000_000;
const binding = (expiresInS: number, over: Partial<Registration> = {}): Registration => ({
  contact: 'sip:1001@10.0.0.5:5062',
  transport: 'UDP',
  address: '10.0.0.5',
  port: 5062,
  expires_at: now + expiresInS * 1000,
  since: now - 60_000,
  user_agent: 'baresip',
  ...over,
});

describe('registration refreshes in the mapping table', () => {
  it('a refresh of the same binding with more than half the lifetime still published is not written', () => {
    // Published an hour's binding 20 minutes ago: 40 minutes left of the new hour's 60.
    assert.equal(quietRefresh(binding(40 * 60), binding(3600), now), true);
  });

  it('written when the published expiry has half the lifetime or less left (it would run out before the next refresh)', () => {
    assert.equal(quietRefresh(binding(30 * 60), binding(3600), now), false);
    assert.equal(quietRefresh(binding(10), binding(3600), now), false);
  });

  it('written when anything of the binding changed, or there was none, or it ends', () => {
    const next = binding(3600);
    assert.equal(quietRefresh(binding(3500, { port: 5064 }), next, now), false);
    assert.equal(quietRefresh(binding(3500, { contact: 'sip:1001@10.0.0.6' }), next, now), false);
    assert.equal(quietRefresh(binding(3500, { user_agent: 'linphone' }), next, now), false);
    assert.equal(quietRefresh(binding(3500, { since: now }), next, now), false, 'a new binding starts');
    const { user_agent: _, ...noAgent } = binding(3500);
    assert.equal(quietRefresh(noAgent, next, now), false, 'a field appears');
    assert.equal(quietRefresh(undefined, next, now), false);
    assert.equal(quietRefresh(binding(3500), undefined, now), false, 'an unregister is always written');
  });
});
