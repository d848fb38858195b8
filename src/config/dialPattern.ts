// A dial pattern of the config (sip.conference_numbers): digits, with x for
// any digit. One matcher for call routing and for check-config.

/** Whether `number` matches `pattern` (same length; x or X matches any digit). */
export function matchesDialPattern(pattern: string, number: string): boolean {
  return pattern.length === number.length && [...pattern].every((c, i) => c === 'x' || c === 'X' || c === number[i]);
}
