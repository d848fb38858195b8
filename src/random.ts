// Random bytes for identifiers (SIP branches, tags, Call-IDs) and for the
// bus's AES-GCM nonces. One getrandom() call per identifier was a fifth of
// the CPU of a call setup, and one per sealed bus message another 5 %, so
// entropy is drawn 8 KiB at a time and handed out from the pool. Every byte
// is handed out once.
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(8192);
let used = pool.length;

function take(bytes: number): number {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const at = used;
  used += bytes;
  return at;
}

/** `bytes` random bytes as hex (2 × bytes characters). */
export function randomHex(bytes: number): string {
  const at = take(bytes);
  return pool.toString('hex', at, at + bytes);
}

/** `bytes` (at most 8192) random bytes, a copy of their own. */
export function randomBuffer(bytes: number): Buffer {
  const at = take(bytes);
  return Buffer.from(pool.subarray(at, at + bytes));
}
