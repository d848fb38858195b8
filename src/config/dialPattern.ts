// Dial patterns of the config. Conference numbers (sip.conference_numbers):
// digits, with x for any digit. Route patterns (dial_plan.route_patterns),
// in CUCM's notation: digits, * and #, X (any digit), [2-9] or [135] or
// [^0] (one digit of a set), ! (one or more digits, last only), a leading +,
// and one . that marks where the digits an outside line needs begin (what
// comes before it, such as the 9 of "9.!", can be discarded). One matcher
// for call routing and for check-config.
import { TandemError } from '../errors.ts';

/** Whether `number` matches `pattern` (same length; x or X matches any digit). */
export function matchesDialPattern(pattern: string, number: string): boolean {
  return pattern.length === number.length && [...pattern].every((c, i) => c === 'x' || c === 'X' || c === number[i]);
}

/** A route pattern ready to match dialled numbers. */
export interface CompiledPattern {
  pattern: string;
  /** how many dialled characters come before the dot (0 without one) */
  predot: number;
  /**
   * how many numbers it matches (Infinity with !): of several patterns that
   * match, the one that matches the fewest wins, as in CUCM (closest match)
   */
  size: number;
  matches(number: string): boolean;
}

export class DialPatternError extends TandemError {
  constructor(pattern: string, why: string, options?: ErrorOptions) {
    super(`route pattern "${pattern}": ${why}`, options);
  }
}

/** Compiles a route pattern; throws DialPatternError saying what is wrong with it. */
export function compileRoutePattern(pattern: string): CompiledPattern {
  if (pattern.length === 0 || pattern.length > 40) throw new DialPatternError(pattern, 'expected 1 to 40 characters');
  let re = '^';
  let size = 1;
  let tokens = 0;
  let predot = 0;
  let dot = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '+' && i === 0) {
      re += '\\+';
      tokens++;
    } else if (/[0-9*#]/.test(c)) {
      re += c === '*' ? '\\*' : c;
      tokens++;
    } else if (c === 'X' || c === 'x') {
      re += '[0-9]';
      size *= 10;
      tokens++;
    } else if (c === '[') {
      const end = pattern.indexOf(']', i);
      if (end < 0) throw new DialPatternError(pattern, `"[" at ${i + 1} is not closed`);
      const body = pattern.slice(i + 1, end);
      const negate = body.startsWith('^');
      const digits = new Set<string>();
      const set = negate ? body.slice(1) : body;
      if (!/^([0-9](-[0-9])?)+$/.test(set))
        throw new DialPatternError(pattern, `[${body}] is not a set of digits such as [2-9] or [135]`);
      for (const m of set.matchAll(/([0-9])(?:-([0-9]))?/g)) {
        const lo = Number(m[1]);
        const hi = m[2] === undefined ? lo : Number(m[2]);
        if (hi < lo) throw new DialPatternError(pattern, `[${body}]: range ${lo}-${hi} runs backwards`);
        for (let d = lo; d <= hi; d++) digits.add(String(d));
      }
      const chosen = negate ? [...'0123456789'].filter((d) => !digits.has(d)) : [...digits];
      if (chosen.length === 0) throw new DialPatternError(pattern, `[${body}] matches no digit`);
      re += `[${chosen.join('')}]`;
      size *= chosen.length;
      tokens++;
      i = end;
    } else if (c === '!') {
      if (i !== pattern.length - 1) throw new DialPatternError(pattern, '"!" (one or more digits) must come last');
      re += '[0-9]+';
      size = Infinity;
      tokens++;
    } else if (c === '.') {
      if (dot) throw new DialPatternError(pattern, 'only one "." is allowed');
      dot = true;
      predot = tokens;
    } else {
      throw new DialPatternError(pattern, `"${c}" at ${i + 1} is not a digit, *, #, X, [set], ! or .`);
    }
  }
  if (tokens === 0) throw new DialPatternError(pattern, 'matches nothing');
  if (dot && predot === tokens) throw new DialPatternError(pattern, 'nothing follows the "."');
  const regex = new RegExp(`${re}$`);
  return { pattern, predot, size, matches: (n) => regex.test(n) };
}
