// Counts of the calls through each trunk this node carries, for the API and
// the metrics: attempts in and out, and the failures of calls out by reason
// (the far end's final answer, no answer at all, every server down, every
// line in use). Counted where the outcome is known: on the node whose half
// talks to the trunk.

/** Why a call out through a trunk failed: the far end's status (`status_486`), or one of ours. */
export type TrunkFailureReason = 'no_peer_up' | 'lines_full' | 'no_answer' | `status_${number}`;

export interface TrunkCounts {
  attempts: { in: number; out: number };
  failures: Record<string, number>;
}

export class TrunkStats {
  private readonly counts = new Map<string, TrunkCounts>();

  attempt(trunk: string, direction: 'in' | 'out'): void {
    this.of(trunk).attempts[direction]++;
  }

  /** A call out that failed with this far-end status (0 or 408: no answer), or for one of our reasons. */
  failed(trunk: string, why: number | 'no_peer_up' | 'lines_full'): void {
    const reason: TrunkFailureReason =
      typeof why === 'string' ? why : why === 0 || why === 408 ? 'no_answer' : `status_${why}`;
    const f = this.of(trunk).failures;
    f[reason] = (f[reason] ?? 0) + 1;
  }

  view(trunk: string): TrunkCounts {
    const c = this.of(trunk);
    return { attempts: { ...c.attempts }, failures: { ...c.failures } };
  }

  private of(trunk: string): TrunkCounts {
    let c = this.counts.get(trunk);
    if (!c) this.counts.set(trunk, (c = { attempts: { in: 0, out: 0 }, failures: {} }));
    return c;
  }
}
