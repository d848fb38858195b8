// The alarm book's rules (node/alarms.ts) and the cluster's merge of every
// node's alarms by condition (admin/clusterView.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeAlarms } from '../../src/admin/clusterView.ts';
import { AlarmBook } from '../../src/node/alarms.ts';

describe('alarms', () => {
  it('checked again while standing is one occurrence; gone unacknowledged stays; back again counts; acknowledged standing stays until it goes', () => {
    const book = new AlarmBook('cm1');
    book.raise('device_busy:X', 'device_busy', 'X at 7/8', 1000);
    book.raise('device_busy:X', 'device_busy', 'X at 8/8', 2000);
    assert.deepEqual(
      book.list().map((a) => [a.key, a.count, a.text, a.active, a.raised_at, a.last_at]),
      [['device_busy:X', 1, 'X at 8/8', true, 1000, 2000]],
    );
    book.clear('device_busy:X');
    book.raise('device_busy:X', 'device_busy', 'X at 7/8', 3000);
    assert.equal(book.list()[0]?.count, 2, 'it came back');
    book.clear('device_busy:X');
    assert.equal(book.list()[0]?.active, false, 'over, but nobody saw it: kept');
    assert.equal(book.acknowledge('device_busy:X', 'alice'), true);
    assert.deepEqual(book.list(), [], 'seen and over: gone');
    // Acknowledged while standing: kept as acknowledged, gone when its condition goes.
    book.raise('node_down:cm3', 'node_down', 'node cm3 is down');
    book.acknowledge('node_down:cm3', 'bob', 5000);
    assert.deepEqual(
      book.list().map((a) => [a.acked_by, a.acked_at, a.active]),
      [['bob', 5000, true]],
    );
    book.clear('node_down:cm3');
    assert.deepEqual(book.list(), []);
    // Back again after it went: it needs someone again.
    book.raise('node_down:cm3', 'node_down', 'node cm3 is down');
    assert.equal(book.list()[0]?.acked_by, null);
    assert.equal(book.acknowledge('nothing', 'bob'), false);
  });

  it('keeps at most 500, dropping settled ones before standing ones nobody saw', () => {
    const book = new AlarmBook('cm1');
    book.raise('first', 'node_down', 'standing, unseen');
    for (let i = 0; i < 600; i++) {
      book.raise(`e${i}`, 'mrgl_exhausted', 'a moment');
      book.clear(`e${i}`);
    }
    const list = book.list();
    assert.equal(list.length, 500);
    assert.ok(
      list.some((a) => a.key === 'first'),
      'the standing alarm outlived the settled ones',
    );
  });

  it('one condition seen by several nodes is one alarm: standing while any sees it, acknowledged only when all did', () => {
    const a = new AlarmBook('cm1');
    const b = new AlarmBook('cm2');
    a.raise('node_down:cm3', 'node_down', 'node cm3 is down', 1000);
    b.raise('node_down:cm3', 'node_down', 'node cm3 is down', 1200);
    b.raise('device_busy:CFB2', 'device_busy', 'CFB2 at 7/8', 1100);
    a.acknowledge('node_down:cm3', 'alice');
    const merged = mergeAlarms([...a.list(), ...b.list()]);
    assert.deepEqual(
      merged.map((m) => [m.key, m.nodes.join(','), m.raised_at, m.acked_by]),
      [
        ['node_down:cm3', 'cm1,cm2', 1000, null],
        ['device_busy:CFB2', 'cm2', 1100, null],
      ],
    );
    b.acknowledge('node_down:cm3', 'bob');
    assert.equal(mergeAlarms([...a.list(), ...b.list()])[0]!.acked_by, 'bob');
  });
});
