// The whole cluster as any node's admin server sees it (the console's
// picture, the same from every node): nodes and the config version each
// runs, media resources with their use, every node's calls with the quality
// of their media legs, and the recent events of every node. Built from one
// status request per node that is up, in parallel; a node that does not
// answer is shown without its data, never blocks the others.
import type { PeerStatus } from '../cluster/liveness.ts';
import type {
  CallView,
  ClusterEvent,
  DeviceStatus,
  LegQuality,
  NodeStatusReply,
  TrunkStatus,
  Alarm,
} from '../cluster/messages.ts';
import type { MediaResourceType } from '../config/schema.ts';
import type { ClusterDeps } from './deps.ts';
import { errorMessage } from '../errors.ts';

export interface NodeView {
  name: string;
  self: boolean;
  up: boolean;
  /** up, unreachable (silent, suspected, what it holds kept), down (proven gone) or unknown (never heard) */
  state: PeerStatus | 'unknown';
  boot: string | null;
  config_version: string | null;
  admin: string;
  sip: string;
  last_seen: number | null;
}

export interface ResourceView {
  name: string;
  type: MediaResourceType;
  node: string;
  location: string | null;
  pid: string | null;
  registered: boolean;
  /** null: `auto` on a node that did not answer (its node resolves it) */
  capacity: number | null;
  active: number | null;
  available: number | null;
  out_of_resources: number | null;
  draining: boolean | null;
}

export interface ClusterSnapshot {
  at: number;
  served_by: string;
  config_version: string;
  nodes: NodeView[];
  resources: ResourceView[];
  /** every node's call halves; each resource with the quality of the device's legs (by allocation) */
  calls: Array<CallView & { node: string; legs: Record<string, LegQuality[]> }>;
  events: ClusterEvent[];
  /** every trunk on each node that carries it */
  trunks: Array<TrunkStatus & { node: string }>;
  /** alarms of every node that answered, one per condition (several nodes may see one node down) */
  alarms: AlarmView[];
}

/** One alarm condition as the cluster sees it: the nodes that raised it, standing while any sees it. */
export interface AlarmView {
  key: string;
  kind: Alarm['kind'];
  text: string;
  nodes: string[];
  raised_at: number;
  last_at: number;
  count: number;
  active: boolean;
  /** acknowledged on every node that raised it (by the last operator who did) */
  acked_by: string | null;
}

/** The alarms of several nodes merged by condition, newest first. */
export function mergeAlarms(alarms: readonly Alarm[]): AlarmView[] {
  const byKey = new Map<string, AlarmView>();
  for (const a of alarms) {
    const v = byKey.get(a.key);
    if (!v) {
      byKey.set(a.key, {
        key: a.key,
        kind: a.kind,
        text: a.text,
        nodes: [a.node],
        raised_at: a.raised_at,
        last_at: a.last_at,
        count: a.count,
        active: a.active,
        acked_by: a.acked_by,
      });
      continue;
    }
    v.nodes.push(a.node);
    v.raised_at = Math.min(v.raised_at, a.raised_at);
    if (a.last_at > v.last_at) {
      v.last_at = a.last_at;
      v.text = a.text;
    }
    v.count += a.count;
    v.active ||= a.active;
    v.acked_by = v.acked_by !== null && a.acked_by !== null ? a.acked_by : null;
  }
  return [...byKey.values()].sort((a, b) => b.last_at - a.last_at);
}

export class ClusterView {
  constructor(private readonly cm: ClusterDeps) {}

  /** Status of every node that is up (those that fail to answer are left out, with a warning). */
  async statuses(want: {
    detail?: boolean;
    history?: boolean;
    history_day?: boolean;
  }): Promise<Map<string, NodeStatusReply>> {
    const { cm } = this;
    const out = new Map<string, NodeStatusReply>();
    await Promise.all(
      [...cm.model.nodes.keys()]
        .filter((n) => n === cm.name || cm.liveness.isUp(n))
        .map(async (n) => {
          try {
            out.set(n, await cm.nodeStatus(n, want));
          } catch (err) {
            cm.log.warn({ peer: n, err: errorMessage(err) }, 'no status from node');
          }
        }),
    );
    return out;
  }

  nodes(statuses?: Map<string, NodeStatusReply>): NodeView[] {
    const { cm } = this;
    const seen = new Map(cm.liveness.states().map((s) => [s.node, s]));
    return [...cm.model.nodes.values()].map((n) => {
      const self = n.name === cm.name;
      const s = seen.get(n.name);
      return {
        name: n.name,
        self,
        up: self || (s?.up ?? false),
        state: self ? 'up' : (s?.status ?? 'unknown'),
        boot: self ? cm.boot : (s?.boot ?? null),
        config_version: self ? cm.model.version : (statuses?.get(n.name)?.config_version ?? null),
        admin: n.admin,
        sip: n.sip,
        last_seen: self ? Date.now() : (s?.lastSeen ?? null),
      };
    });
  }

  async resources(statuses?: Map<string, NodeStatusReply>): Promise<ResourceView[]> {
    const { cm } = this;
    const st = statuses ?? (await this.statuses({}));
    const status = new Map<string, DeviceStatus>();
    for (const s of st.values()) for (const d of s.devices) status.set(d.name, d);
    return [...cm.model.resources.values()].map((r) => {
      // (not a reason to watch the node's devices: its own answer says whether it runs the device)
      const found = cm.devices.lookup(r.name, { watch: false });
      const told = status.get(r.name);
      const registered = found.registered || (found.entry === undefined && told !== undefined);
      const s = registered ? told : undefined;
      return {
        name: r.name,
        type: r.type,
        node: r.node,
        location: r.location ?? null,
        pid: found.entry?.pid ?? s?.pid ?? null,
        registered,
        capacity: s?.capacity ?? (r.capacity === 'auto' ? null : r.capacity),
        active: s?.active ?? null,
        available: s?.available ?? null,
        out_of_resources: s?.out_of_resources ?? null,
        draining: s ? (s.draining ?? false) : null,
      };
    });
  }

  async snapshot(): Promise<ClusterSnapshot> {
    const st = await this.statuses({ detail: true });
    const legs = new Map<string, LegQuality[]>();
    for (const s of st.values()) for (const m of s.media ?? []) legs.set(m.allocation, m.legs);
    const calls = [...st.values()].flatMap((s) =>
      (s.calls ?? []).map((c) => ({
        ...c,
        node: s.node,
        legs: Object.fromEntries(
          c.resources.filter((r) => legs.has(r.allocation)).map((r) => [r.allocation, legs.get(r.allocation)!]),
        ),
      })),
    );
    const events = [...st.values()]
      .flatMap((s) => s.events ?? [])
      .sort((a, b) => a.at - b.at)
      .slice(-200);
    return {
      at: Date.now(),
      served_by: this.cm.name,
      config_version: this.cm.model.version,
      nodes: this.nodes(st),
      resources: await this.resources(st),
      calls,
      events,
      trunks: [...st.values()].flatMap((s) => (s.trunks ?? []).map((t) => ({ ...t, node: s.node }))),
      alarms: mergeAlarms([...st.values()].flatMap((s) => s.alarms ?? [])),
    };
  }

  /** Every device's active count over the last hour, from the nodes that host them. */
  async history(day = false): Promise<Record<string, Array<[number, number]>>> {
    const st = await this.statuses({ history: true, history_day: day });
    return Object.assign({}, ...[...st.values()].map((s) => s.history ?? {}));
  }
}
