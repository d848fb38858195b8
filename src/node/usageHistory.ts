// The use of this node's media resources over the last hour: every device's
// active count sampled every 10 s into a bounded ring, so any node's console
// can draw the whole cluster's last hour (NodeStatusReply.history).
import type { DeviceStatus } from '../cluster/messages.ts';

export const SAMPLE_MS = 10_000;
const KEEP = 360; // one hour

export class UsageHistory {
  /** device -> [time, active] samples, oldest first */
  private readonly samples = new Map<string, Array<[number, number]>>();
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

  snapshot(): Record<string, Array<[number, number]>> {
    return Object.fromEntries([...this.samples].map(([d, s]) => [d, [...s]]));
  }

  /** Forgets devices this node no longer hosts (a config change removed them). */
  retain(devices: ReadonlySet<string>): void {
    for (const d of this.samples.keys()) if (!devices.has(d)) this.samples.delete(d);
  }

  private async sample(): Promise<void> {
    const now = Date.now();
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
    }
  }
}
