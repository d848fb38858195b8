// Calls after a silence. While two nodes could not hear each other (a bus
// outage, a partition) both kept their halves of the calls between them, and
// the media went on. Signals sent meanwhile (a hang-up, above all) were lost,
// so when they hear each other again each asks the other which of its halves'
// far halves are gone, and ends those halves (BYE to its phone). Both sides
// ask, so it does not matter which one's signal was lost.
import type { CallContext } from './callContext.ts';
import { otherRole, type HalfCall, type Role } from './halfCall.ts';
import type { CallSignal, CallSignalReply } from './signals.ts';

type AuditSignal = Extract<CallSignal, { op: 'audit' }>;
type HalfRef = { call: string; to: Role };

export class CallAudit {
  /** halves younger than this are left alone: their setup may still be on its way */
  private readonly graceMs: number;

  constructor(private readonly c: CallContext) {
    this.graceMs = Math.max(5000, 8 * c.model.config.cluster.request_timeout_ms);
  }

  /** Asks `node` about the far halves of this node's calls with it; ends the halves whose far half is gone. Returns how many. */
  async with(node: string, reason: string): Promise<number> {
    if (node === this.c.node) return 0;
    const now = Date.now();
    const mine = this.c.table
      .all()
      .filter((h) => h.peerNode === node && !h.conference && h.state !== 'ended' && now - h.since > this.graceMs);
    if (mine.length === 0) return 0;
    const reply = await this.c.peer.send(node, {
      op: 'audit',
      node: this.c.node,
      halves: mine.map((h) => ({ call: h.call, to: otherRole(h.role) })),
    });
    if (!reply.ok || !('missing' in reply)) return 0; // unreachable again: the next audit asks
    const gone = new Set(reply.missing.map((m) => `${m.call}/${otherRole(m.to)}`));
    const ended = mine.filter((h) => gone.has(h.key) && h.state !== 'ended');
    for (const h of ended) {
      this.c.log.warn(
        { call: h.call, role: h.role, peer: node, reason },
        'the far half of this call is gone: ending it',
      );
      await this.c.teardown.hangup(
        h,
        `the far half on ${node} ended while the nodes could not hear each other (${reason})`,
        true,
      );
    }
    return ended.length;
  }

  /** The answer to another node's audit: which of the halves it names this node does not have. */
  answer(s: AuditSignal): CallSignalReply {
    const missing: HalfRef[] = [];
    for (const ref of s.halves) {
      const h: HalfCall | undefined = this.c.table.get(`${ref.call}/${ref.to}`);
      if (!h || h.state === 'ended' || (h.peerNode !== s.node && !h.conference)) missing.push(ref);
    }
    return { ok: true, missing };
  }
}
