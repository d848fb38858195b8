// "did you mean" for a name the config refers to but does not define: the
// closest defined name, when it is close enough to be a typo.

/** Levenshtein distance, case-insensitive (names differ by case as typos do). */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length]!;
}

/**
 * ` (did you mean "X"?)` for the closest of `known` within a third of the
 * name's length, when no other name is as close (cm4 among cm1, cm2 and cm3
 * is not a typo of any one of them); else ''.
 */
export function didYouMean(name: string, known: Iterable<string>): string {
  let best: string | undefined;
  let bestD = Infinity;
  let tie = false;
  for (const k of known) {
    if (k === name) continue;
    const d = distance(name, k);
    if (d < bestD) [best, bestD, tie] = [k, d, false];
    else if (d === bestD) tie = true;
  }
  return best !== undefined && !tie && bestD <= Math.max(1, Math.floor(name.length / 3))
    ? ` (did you mean "${best}"?)`
    : '';
}
