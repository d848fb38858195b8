// A PID names one device process cluster-wide: the hosting node, the kind of
// device, the device name, and the node's boot id. The boot id makes PIDs of a
// restarted node differ from those before the restart, so a holder of an
// allocation can tell that the process it talked to is gone.
export type Pid = string & { readonly __pid: unique symbol };

export interface PidParts {
  node: string;
  kind: string;
  name: string;
  boot: string;
}

const PID_RE = /^([A-Za-z][A-Za-z0-9_-]*)\/([a-z_]+)\/([A-Za-z0-9_-]+)~([a-z0-9]+)$/;

export function makePid(parts: PidParts): Pid {
  return `${parts.node}/${parts.kind}/${parts.name}~${parts.boot}` as Pid;
}

export function parsePid(s: string): PidParts | undefined {
  const m = PID_RE.exec(s);
  if (!m) return undefined;
  return { node: m[1]!, kind: m[2]!, name: m[3]!, boot: m[4]! };
}

export function isPid(s: unknown): s is Pid {
  return typeof s === 'string' && PID_RE.test(s);
}

export function pidNode(pid: Pid): string {
  return pid.slice(0, pid.indexOf('/'));
}

/** A fresh boot id per node start: time-based, base36, short. */
export function newBootId(): string {
  return (Date.now().toString(36) + Math.floor(Math.random() * 1296).toString(36)).toLowerCase();
}
