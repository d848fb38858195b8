// A node's record of its devices' use: 10 s samples for the last hour, each
// minute's peak (not its last sample) for the last day.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceStatus } from '../../src/cluster/messages.ts';
import { UsageHistory } from '../../src/node/usageHistory.ts';

describe('usage history', () => {
  it('keeps the last hour of samples and the last day of minute peaks', async () => {
    let active = 0;
    const h = new UsageHistory(async () => [{ name: 'CFB', active } as DeviceStatus]);
    const t0 = Date.UTC(2026, 11, 6, 0, 0, 0);
    // A day and a bit, a sample every 10 s: a peak of 5 in the middle of each minute, 1 otherwise.
    for (let i = 0; i < (86_400 + 600) / 10; i++) {
      active = i % 6 === 3 ? 5 : 1;
      await h.sample(t0 + i * 10_000);
    }
    const hour = h.snapshot().CFB!;
    assert.equal(hour.length, 360, 'an hour of 10 s samples');
    const day = h.snapshot(true).CFB!;
    assert.equal(day.length, 1440, 'a day of minutes');
    assert.ok(
      day.every(([t]) => t % 60_000 === 0),
      'each at the start of its minute',
    );
    assert.ok(
      day.every(([, peak]) => peak === 5),
      "each minute's peak, not its last sample",
    );
    assert.equal(day.at(-1)![0] - day[0]![0], 1439 * 60_000);
    h.retain(new Set());
    assert.deepEqual(h.snapshot(true), {});
  });
});
