// Random identifiers for branches, tags and Call-IDs. One getrandom() call
// per identifier was a fifth of the CPU of a call setup, so entropy is drawn
// 8 KiB at a time and handed out from the pool.
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(8192);
let used = pool.length;

/** `bytes` random bytes as hex (2 × bytes characters). */
export function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const s = pool.toString('hex', used, used + bytes);
  used += bytes;
  return s;
}
