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

/**
 * A fresh boot id per node start: start time then two random digits, base36,
 * fixed width, so a later start of a node sorts after an earlier one.
 */
export function newBootId(): string {
  const rand = Math.floor(Math.random() * 1296)
    .toString(36)
    .padStart(2, '0');
  return Date.now().toString(36).padStart(9, '0') + rand;
}

/** Whether boot id a is from a later start than b (see newBootId). */
export function isLaterBoot(a: string, b: string): boolean {
  return a.length === b.length ? a > b : a.length > b.length;
}
