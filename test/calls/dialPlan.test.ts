// The dial plan's rule (routeOf) and CUCM-style route patterns: what
// matches, which of several patterns wins (the closest), what the trunk is
// sent (digits before the dot discarded, a prefix), and partitions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { routeOf } from '../../src/calls/trunkCalls.ts';
import { compileRoutePattern, DialPatternError } from '../../src/config/dialPattern.ts';
import type { RoutePattern } from '../../src/config/model.ts';

const pattern = (
  p: string,
  o: { partition?: string; discard?: boolean; prefix?: string; route?: string[] } = {},
): RoutePattern => ({
  ...compileRoutePattern(p),
  partition: o.partition,
  route: o.route ?? ['T'],
  discardPredot: o.discard ?? true,
  prefix: o.prefix ?? '',
});

describe('route patterns and the dial plan', () => {
  it('matches digits, X, sets, ranges, negated sets, ! and a leading +', () => {
    const m = (p: string, n: string) => compileRoutePattern(p).matches(n);
    assert.ok(m('9.[2-9]XXXXXX', '95551234'));
    assert.ok(!m('9.[2-9]XXXXXX', '91551234'), '[2-9] refuses 1');
    assert.ok(!m('9.[2-9]XXXXXX', '955512345'), 'fixed length');
    assert.ok(m('9.011!', '9011441234567'));
    assert.ok(!m('9.011!', '9011'), '! is one or more digits');
    assert.ok(m('[^0]XX', '123') && !m('[^0]XX', '023'));
    assert.ok(m('[135]X', '57') && !m('[135]X', '27'));
    assert.ok(m('+1XXX', '+1555') && !m('+1XXX', '11555'));
    assert.ok(m('*8X', '*81') && m('#9', '#9'));
  });

  it('refuses malformed patterns with a named error that says why', () => {
    for (const [p, why] of [
      ['9!X', /must come last/],
      ['9.1.2', /only one "."/],
      ['9[2-9', /is not closed/],
      ['9[a]', /not a set of digits/],
      ['9[^0-9]', /matches no digit/],
      ['9.', /nothing follows/],
      ['9Y', /"Y" at 2/],
      ['', /1 to 40/],
    ] as const) {
      assert.throws(
        () => compileRoutePattern(p),
        (e: unknown) => e instanceof DialPatternError && why.test(e.message),
        p,
      );
    }
  });

  it('the closest match wins (fewest numbers matched), the first listed on a tie; the dot and prefix shape what is sent', () => {
    const plan = [
      pattern('9.!', { route: ['ANY'] }),
      pattern('9.[2-9]XXXXXX', { route: ['LOCAL'] }),
      pattern('9.1[2-9]XXXXXXXXX', { route: ['LD'], prefix: '+' }),
    ];
    const caller = { partitions: new Set<string>() };
    const r = (n: string) => routeOf(plan, caller, n);
    assert.deepEqual(pick(r('95551234')), { kind: 'route', number: '5551234', trunks: ['LOCAL'] });
    assert.deepEqual(pick(r('914155551234')), { kind: 'route', number: '+14155551234', trunks: ['LD'] });
    assert.deepEqual(pick(r('9123')), { kind: 'route', number: '123', trunks: ['ANY'] });
    assert.deepEqual(pick(r('8123')), { kind: 'no_route' });
    const keep = routeOf([pattern('9.!', { discard: false })], caller, '9123');
    assert.equal(keep.kind === 'route' && keep.number, '9123', 'without discard the whole number is sent');
  });

  it('partitions: a pattern in a partition the caller lacks is not its own; if only such patterns match, the call is not allowed', () => {
    const plan = [
      pattern('9.011!', { partition: 'intl', route: ['INTL'] }),
      pattern('9.!', { partition: 'local', route: ['LOCAL'] }),
    ];
    const lobby = { partitions: new Set(['local']) };
    const exec = { partitions: new Set(['local', 'intl']) };
    assert.deepEqual(pick(routeOf(plan, exec, '9011442071234567')), {
      kind: 'route',
      number: '011442071234567',
      trunks: ['INTL'],
    });
    // The lobby phone's own closest match is the local catch-all: CUCM routes it there too (a catch-all must not reach abroad).
    assert.deepEqual(pick(routeOf(plan, lobby, '9011442071234567')), {
      kind: 'route',
      number: '011442071234567',
      trunks: ['LOCAL'],
    });
    assert.equal(routeOf(plan, { partitions: new Set() }, '95551234').kind, 'not_allowed');
  });
});

function pick(r: ReturnType<typeof routeOf>) {
  return r.kind === 'route' ? { kind: r.kind, number: r.number, trunks: [...r.trunks] } : { kind: r.kind };
}
