// CUCM's Call Manager Group: a phone may be controlled by any node of its
// ordered list (its own node first, then its pool's or its own
// call_managers), and is controlled by the first of them that is alive as
// this node sees it. The one rule every part asks (registrar, call set-up,
// failover): a node that is not the phone's controller keeps a phone's
// binding only on standby, and never speaks for it.
import type { PhoneSpec } from '../config/model.ts';

/** What the rule needs of liveness: whether a node is alive (up, or silent but not proven gone). */
export interface NodeAliveness {
  statusOf(node: string): 'up' | 'unreachable' | 'down' | 'unknown';
}

/** The node that controls `phone` now, as `self` sees the cluster; undefined when none of its nodes is alive. */
export function controllerOf(phone: PhoneSpec, self: string, liveness: NodeAliveness): string | undefined {
  return phone.callManagers.find(
    (n) => n === self || liveness.statusOf(n) === 'up' || liveness.statusOf(n) === 'unreachable',
  );
}
