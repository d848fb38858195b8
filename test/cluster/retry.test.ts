// Which bus errors a node retries. The JetStream client reports its API's
// "no responders" as "jetstream is not enabled"; at 50 nodes over three
// servers that came while their JetStream layer was busy, and nodes exited
// on it (bench:scale). It is retried now; a permission error is not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTransient, retryTransient } from '../../src/cluster/retry.ts';
import { silentLogger } from '../../src/log.ts';

/** An error as @nats-io/jetstream makes it (its class is not exported): name and message as the library sets them. */
const jsError = (name: string, message: string) => Object.assign(new Error(message), { name });

describe('bus errors retried or not', () => {
  it('"jetstream is not enabled" is tried again until it passes; a permissions violation is thrown at once', async () => {
    assert.equal(isTransient(jsError('JetStreamNotEnabled', 'jetstream is not enabled')), true);
    assert.equal(
      isTransient(jsError('PermissionViolationError', "Permissions Violation for Publish to '$KV.x.devices.cm3.X'")),
      false,
    );
    let calls = 0;
    const v = await retryTransient(
      async () => {
        if (++calls < 3) throw jsError('JetStreamNotEnabled', 'jetstream is not enabled');
        return 'opened';
      },
      { what: 'opening the bucket', log: silentLogger(), firstDelayMs: 5 },
    );
    assert.equal(v, 'opened');
    assert.equal(calls, 3);
    let once = 0;
    await assert.rejects(
      retryTransient(
        async () => {
          once++;
          throw jsError('PermissionViolationError', 'Permissions Violation for Publish');
        },
        { what: 'writing', log: silentLogger(), firstDelayMs: 5 },
      ),
      /Permissions Violation/,
    );
    assert.equal(once, 1);
  });
});
