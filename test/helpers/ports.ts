import { createServer } from 'node:net';

/** Fixed RTP port ranges of the test configs: a port picked here must not fall in them. */
const RESERVED: ReadonlyArray<readonly [number, number]> = [[43000, 52999]];
/** Ports handed out by this process: the kernel may offer the same free port twice in a row. */
const given = new Set<number>();

/** A TCP port that was free a moment ago on 127.0.0.1, not handed out before by this process, outside the tests' RTP ranges. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await anyFreePort();
    if (given.has(p) || RESERVED.some(([lo, hi]) => p >= lo && p <= hi)) continue;
    given.add(p);
    return p;
  }
  throw new Error('no free port found in 50 tries');
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}
