// A node's alarms, as an operator's console shows them until someone
// acknowledges them (CUCM's RTMT alerts, the alarm list of any NMS): a device
// of this node at or above its kind's threshold of capacity, a node this one
// sees down, an MRGL with nothing left for a request, a SIP user or source
// locked out for guessing. Each alarm has a key (the same condition seen by
// several nodes, e.g. one node down, is one alarm in the console); raised
// again after it went, it counts once more; its condition gone, it stays until
// acknowledged; acknowledged while it stands, it stays as acknowledged and
// goes when the condition does. Bounded: the oldest settled ones go first.
import type { Alarm, AlarmKind } from '../cluster/messages.ts';

const MAX_ALARMS = 500;

export class AlarmBook {
  private readonly alarms = new Map<string, Alarm>();

  constructor(
    private readonly node: string,
    private readonly onChange: (a: Alarm) => void = () => undefined,
  ) {}

  /** The condition behind `key` stands (now, or again). */
  raise(key: string, kind: AlarmKind, text: string, now = Date.now()): void {
    const a = this.alarms.get(key);
    if (a?.active) {
      // (still the same occurrence: checked again, not raised again)
      a.last_at = now;
      a.text = text;
      return;
    }
    // New, or back after it went: it needs someone's attention again.
    const fresh: Alarm = {
      key,
      kind,
      node: this.node,
      text,
      raised_at: now,
      last_at: now,
      count: (a?.count ?? 0) + 1,
      active: true,
      acked_by: null,
      acked_at: null,
    };
    this.alarms.delete(key);
    this.alarms.set(key, fresh);
    this.trim();
    this.onChange(fresh);
  }

  /** The condition behind `key` is gone: an acknowledged alarm goes with it, the rest wait for someone. */
  clear(key: string): void {
    const a = this.alarms.get(key);
    if (!a?.active) return;
    a.active = false;
    if (a.acked_by !== null) this.alarms.delete(key);
    this.onChange(a);
  }

  /** Whether the condition behind `key` stands now. */
  isActive(key: string): boolean {
    return this.alarms.get(key)?.active ?? false;
  }

  /** Someone saw it: gone if its condition is, else kept as acknowledged. False: no such alarm here. */
  acknowledge(key: string, by: string, now = Date.now()): boolean {
    const a = this.alarms.get(key);
    if (!a) return false;
    if (!a.active) this.alarms.delete(key);
    else {
      a.acked_by = by;
      a.acked_at = now;
    }
    return true;
  }

  /** Newest first. */
  list(): Alarm[] {
    return [...this.alarms.values()].reverse().map((a) => ({ ...a }));
  }

  private trim(): void {
    if (this.alarms.size <= MAX_ALARMS) return;
    for (const [k, a] of this.alarms) {
      if (this.alarms.size <= MAX_ALARMS) return;
      if (!a.active || a.acked_by !== null) this.alarms.delete(k);
    }
    // Only unacknowledged standing alarms left: the oldest of them go.
    for (const k of this.alarms.keys()) {
      if (this.alarms.size <= MAX_ALARMS) return;
      this.alarms.delete(k);
    }
  }
}
