// The outcome of a blind transfer, told to the referring phone's half. The
// transferee's half, once it is the caller of the new call, reports how that
// call ended up (the target answered, or refused, or could not be reached)
// to the transferor's half it came from, which sends the final NOTIFY
// (RFC 3515: the referenced request's final answer) and ends its call. Both
// call setup (answer, refusal) and transfer use it, so it sits apart.
import type { CallContext } from './callContext.ts';
import type { HalfCall } from './halfCall.ts';

export async function reportTransferOutcome(
  c: CallContext,
  h: HalfCall,
  status: number,
  reason: string,
): Promise<void> {
  const to = h.referredBy;
  if (!to) return;
  h.referredBy = undefined;
  const reply = await c.peer.send(to.node, {
    op: 'transfer_result',
    call: to.call,
    to: to.role,
    status,
    reason: reason.slice(0, 200),
  });
  // (481: the referring phone hung up meanwhile; nothing to tell)
  if (!reply.ok && reply.status !== 481)
    c.log.warn({ call: h.call, transferor: to, status: reply.status }, 'transfer outcome not delivered');
}
