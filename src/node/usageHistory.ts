// The use of this node's media resources: every device's active count
// sampled every 10 s, kept for the last hour, and each minute's highest count
// kept for the last day (a peak between samples of a minute is not lost to an
// average), so any node's console can draw the whole cluster's last hour or
// day (NodeStatusReply.history).
import type { DeviceStatus } from '../cluster/messages.ts';

export const SAMPLE_MS = 10_000;
const KEEP = 360; // one hour
const MINUTE_MS = 60_000;
const KEEP_MINUTES = 1440; // one day

export class UsageHistory {
  /** device -> [time, active] samples, oldest first */
  private readonly samples = new Map<string, Array<[number, number]>>();
  /** device -> [minute's start, peak] per minute, oldest first */
  private readonly minutes = new Map<string, Array<[number, number]>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly status: () => Promise<DeviceStatus[]>) {}

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The last hour (`day`: the last day, per minute). */
  snapshot(day = false): Record<string, Array<[number, number]>> {
    return Object.fromEntries([...(day ? this.minutes : this.samples)].map(([d, s]) => [d, [...s]]));
  }

  /** Forgets devices this node no longer hosts (a config change removed them). */
  retain(devices: ReadonlySet<string>): void {
    for (const d of this.samples.keys()) if (!devices.has(d)) this.samples.delete(d);
    for (const d of this.minutes.keys()) if (!devices.has(d)) this.minutes.delete(d);
  }

  /** Takes one sample of every device (also called by tests with their own clock). */
  async sample(now = Date.now()): Promise<void> {
    let devices: DeviceStatus[];
    try {
      devices = await this.status();
    } catch {
      return;
    }
    for (const d of devices) {
      let s = this.samples.get(d.name);
      if (!s) this.samples.set(d.name, (s = []));
      s.push([now, d.active]);
      if (s.length > KEEP) s.splice(0, s.length - KEEP);
      const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
      let m = this.minutes.get(d.name);
      if (!m) this.minutes.set(d.name, (m = []));
      const last = m[m.length - 1];
      if (last && last[0] === minute) last[1] = Math.max(last[1], d.active);
      else m.push([minute, d.active]);
      if (m.length > KEEP_MINUTES) m.splice(0, m.length - KEEP_MINUTES);
    }
  }
}
