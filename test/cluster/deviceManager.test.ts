// The device manager's table when entries are checked on first use (the NATS
// store hands device entries over with their signature check deferred): an
// entry that fails its check changes nothing, one that passes takes its
// place, and a refused one is never taken unchecked later.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeviceManager } from '../../src/cluster/deviceManager.ts';
import { Liveness } from '../../src/cluster/liveness.ts';
import { MemoryBus, MemoryHub } from '../../src/cluster/memoryBus.ts';
import type { RegistryEntry } from '../../src/cluster/messages.ts';
import { makePid } from '../../src/cluster/pid.ts';
import type { RegistryChange, RegistryStore } from '../../src/cluster/registryStore.ts';
import { Subjects } from '../../src/cluster/subjects.ts';
import { silentLogger } from '../../src/log.ts';

/** A store the test feeds by hand. */
class HandStore implements RegistryStore {
  reads = 0;
  feed: (c: RegistryChange) => void = () => {};
  readonly watched: string[] = [];
  async watchNode(node: string): Promise<void> {
    this.watched.push(node);
  }
  async start(onChange: (c: RegistryChange) => void): Promise<void> {
    this.feed = onChange;
  }
  async put(): Promise<void> {}
  async get(): Promise<RegistryEntry | undefined> {
    return undefined;
  }
  async delete(): Promise<void> {}
  async close(): Promise<void> {}
}

const entry = (boot: string): RegistryEntry => ({
  name: 'XC3',
  kind: 'media_resource',
  type: 'transcoder',
  pid: makePid({ node: 'cm3', kind: 'media_resource', name: 'XC3', boot }),
  node: 'cm3',
  boot,
});

async function table(
  problem?: (e: RegistryEntry) => string | undefined,
  ownerOf?: (name: string) => string | undefined,
) {
  const store = new HandStore();
  const liveness = new Liveness(
    new MemoryBus(new MemoryHub()),
    new Subjects('t'),
    { node: 'cm1', boot: 'b0', heartbeatMs: 1000, downAfterMs: 5000 },
    silentLogger(),
  );
  // cm3 is up with boot b1 as far as this node knows
  liveness.heardFrom('cm3', 'b1');
  const dm = new DeviceManager(store, liveness, silentLogger(), problem, ownerOf);
  await dm.start('cm1');
  return { store, dm };
}

describe('mapping table entries checked on first use', () => {
  it('an entry that fails its check leaves the one before in place; the check runs once, at first use', async () => {
    const { store, dm } = await table();
    store.feed({ op: 'put', entry: entry('b1') });
    let checks = 0;
    store.feed({
      op: 'put',
      entry: entry('b2'),
      verify: () => {
        checks++;
        return false;
      },
    });
    assert.equal(checks, 0, 'not checked on arrival');
    assert.equal(dm.size, 1);
    const found = dm.lookup('XC3');
    assert.equal(found.registered, true);
    assert.equal(found.entry?.boot, 'b1', 'the forged entry did not replace the real one');
    dm.lookup('XC3');
    assert.equal(checks, 1, 'checked once');
  });

  it('an entry that passes its check takes its place (and is announced) when first used', async () => {
    const { store, dm } = await table();
    const seen: string[] = [];
    dm.on('registered', (e) => seen.push(e.boot));
    store.feed({ op: 'put', entry: entry('b1'), verify: () => true });
    assert.deepEqual(seen, []);
    assert.equal(dm.lookup('XC3').registered, true);
    assert.deepEqual(seen, ['b1']);
  });

  it('an entry refused by the config and taken up again after a config change keeps its pending check', async () => {
    let refuse = true;
    const { store, dm } = await table(() => (refuse ? 'not a device of cm3' : undefined));
    store.feed({ op: 'put', entry: entry('b1'), verify: () => false });
    assert.equal(dm.refused, 1);
    refuse = false;
    dm.recheck();
    assert.equal(dm.lookup('XC3').registered, false, 'the recheck did not take it unchecked');
    assert.equal(dm.size, 0);
  });

  it('a removal drops an entry still waiting for its check', async () => {
    const { store, dm } = await table();
    store.feed({ op: 'put', entry: entry('b1'), verify: () => true });
    store.feed({ op: 'delete', name: 'XC3', pid: entry('b1').pid });
    assert.equal(dm.lookup('XC3').registered, false);
    assert.equal(dm.size, 0);
  });
});

describe('a node holds the devices of the nodes it watches', () => {
  const owners: Record<string, string> = { XC3: 'cm3', XC5: 'cm5' };
  it('a device of a node not watched is not registered, with the reason; asked for once, its node is watched from then on', async () => {
    const { store, dm } = await table(undefined, (n) => owners[n]);
    await dm.watchNodes(['cm3', 'cm3']);
    assert.deepEqual(store.watched, ['cm3'], 'each node watched once');
    const first = dm.lookup('XC5', { watch: false });
    assert.equal(first.registered, false);
    assert.match(first.registered ? '' : first.reason, /devices of cm5 are not watched here$/);
    assert.deepEqual(store.watched, ['cm3'], 'a lookup told not to watch does not');
    const second = dm.lookup('XC5');
    assert.match(second.registered ? '' : second.reason, /not watched here yet/);
    assert.deepEqual(store.watched, ['cm3', 'cm5']);
    assert.deepEqual(dm.watchedNodes.sort(), ['cm1', 'cm3', 'cm5']);
    // What the new watch brings is taken like any entry.
    const liveEntry: RegistryEntry = {
      name: 'XC5',
      kind: 'media_resource',
      type: 'transcoder',
      pid: makePid({ node: 'cm5', kind: 'media_resource', name: 'XC5', boot: 'b5' }),
      node: 'cm5',
      boot: 'b5',
    };
    store.feed({ op: 'put', entry: liveEntry });
    const third = dm.lookup('XC5');
    assert.equal(third.registered, false, 'cm5 is not up yet here');
    assert.match(third.registered ? '' : third.reason, /node cm5 is down/);
    // A number (no owner in the config) is never a watch question.
    assert.match((dm.lookup('1001') as { reason: string }).reason, /no entry in the mapping table/);
  });
});
