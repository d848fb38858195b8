// What an operator wants to see happen on this node (the console's event
// log): allocations refused, nodes down and up, calls re-homed, config
// applied or refused, devices drained. A bounded ring: the newest are kept.
import type { ClusterEvent } from '../cluster/messages.ts';

const KEEP = 200;

export class EventLog {
  private readonly events: ClusterEvent[] = [];

  constructor(private readonly node: string) {}

  record(kind: ClusterEvent['kind'], text: string): void {
    this.events.push({ at: Date.now(), node: this.node, kind, text: text.slice(0, 500) });
    if (this.events.length > KEEP) this.events.splice(0, this.events.length - KEEP);
  }

  /** The newest events, oldest first. */
  recent(limit = KEEP): ClusterEvent[] {
    return this.events.slice(-limit);
  }
}
