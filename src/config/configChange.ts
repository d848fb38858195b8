// What a new version of the configuration changes for one node, and what it
// may not change while the cluster runs (tandem apply). Pure functions over
// two validated models.
import type { ConfigProblem } from './crossCheck.ts';
import type { ClusterModel, PhoneSpec, ResourceSpec } from './model.ts';
import type { TandemConfig } from './schema.ts';

/** Sections read once at start (sockets, timers, credentials): a change needs the nodes restarted. */
const RESTART_ONLY: ReadonlyArray<readonly [keyof TandemConfig, ...string[]]> = [
  ['cluster'],
  ['nodes'],
  ['admin'],
  ['sip', 'realm'],
  ['sip', 'auth'],
  ['sip', 'tcp'],
  ['media_dir'],
  ['cdr'],
];

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const at = (o: unknown, path: readonly string[]) =>
  path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);

/** Why `next` cannot be applied to a cluster running `running` (empty: it can). */
export function unappliable(running: ClusterModel, next: ClusterModel): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const path of RESTART_ONLY) {
    if (!same(at(running.config, path), at(next.config, path))) {
      problems.push({
        path: path.join('.'),
        message: "cannot change while the cluster runs: change it in every node's file and restart the nodes",
      });
    }
  }
  for (const [name, r] of next.resources) {
    const was = running.resources.get(name);
    if (was && (was.type !== r.type || was.node !== r.node)) {
      problems.push({
        path: `media_resources.${name}`,
        message: `cannot move ${name} (${was.type} on ${was.node}) to ${r.type} on ${r.node} in place: apply without it (it drains), then with it`,
      });
    }
  }
  for (const [number, p] of next.phones) {
    const was = running.phones.get(number);
    if (was && was.node !== p.node)
      problems.push({
        path: `phones.${number}.node`,
        message: `cannot move phone ${number} from ${was.node} to ${p.node} in place: apply without it, then with it`,
      });
  }
  // A trunk's lines are opened on its nodes at start; its peers, codecs, DIDs and the dial plan apply at once.
  const carried = (m: ClusterModel) => JSON.stringify([...m.trunks.values()].map((t) => [t.number, t.nodes]).sort());
  if (carried(running) !== carried(next)) {
    problems.push({
      path: 'trunks',
      message:
        "cannot add or remove a trunk, or change the nodes that carry one, while the cluster runs: change it in every node's file and restart the nodes",
    });
  }
  return problems;
}

export interface NodeChanges {
  /** devices this node starts hosting */
  added: ResourceSpec[];
  /** devices this node stops hosting: drained, removed once idle */
  removed: string[];
  /** devices whose spec changed (capacity, codecs, sources, prompts) */
  changed: ResourceSpec[];
  phonesAdded: PhoneSpec[];
  phonesRemoved: string[];
  phonesChanged: PhoneSpec[];
}

/** The device and phone changes `next` brings to `node`. */
export function changesFor(running: ClusterModel, next: ClusterModel, node: string): NodeChanges {
  const mine = <T extends { node: string }>(m: ReadonlyMap<string, T>) =>
    new Map([...m].filter(([, v]) => v.node === node));
  const diff = <T extends { node: string }>(a: ReadonlyMap<string, T>, b: ReadonlyMap<string, T>) => {
    const [was, now] = [mine(a), mine(b)];
    return {
      added: [...now].filter(([k]) => !was.has(k)).map(([, v]) => v),
      removed: [...was.keys()].filter((k) => !now.has(k)),
      changed: [...now].filter(([k, v]) => was.has(k) && !same(specJson(was.get(k)), specJson(v))).map(([, v]) => v),
    };
  };
  const r = diff(running.resources, next.resources);
  const p = diff(running.phones, next.phones);
  return { ...r, phonesAdded: p.added, phonesRemoved: p.removed, phonesChanged: p.changed };
}

/** One line per change, for logs and the apply report. */
export function describeChanges(c: NodeChanges): string[] {
  return [
    ...c.added.map((r) => `added ${r.type} ${r.name} (capacity ${r.capacity})`),
    ...c.removed.map((n) => `removed ${n} (draining until idle)`),
    ...c.changed.map((r) => `changed ${r.type} ${r.name} (capacity ${r.capacity})`),
    ...c.phonesAdded.map((p) => `added phone ${p.number}`),
    ...c.phonesRemoved.map((n) => `removed phone ${n}`),
    ...c.phonesChanged.map((p) => `changed phone ${p.number}`),
  ];
}

/** Maps (audio sources, prompts) compare by content. */
function specJson(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (x instanceof Map ? Object.fromEntries(x) : x)));
}
