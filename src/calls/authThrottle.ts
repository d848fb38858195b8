// Throttling of failed SIP authentication, per user and per source address.
// - Per user, from any address: after a few failures each further attempt
//   must wait a doubling backoff, and after sip.auth.max_failures the user is
//   locked out for sip.auth.lockout_s. Attempts in a backoff or lockout are
//   refused without checking the password, so guessing costs wall-clock time
//   wherever it comes from, the registered phone's own address included.
// - The one exception is the registered phone itself: a request from the
//   exact transport address (address, port, transport) its binding came
//   from passes, so a guesser cannot lock the real phone out, and a guesser
//   behind the same NAT address (another port) gets no exemption from it.
// - Per source address: locked out only when many different users fail from
//   it (password spraying, SOURCE_LOCK_USERS). One user's failures never
//   block the other phones behind that address (offices put hundreds of
//   phones behind one NAT address).
// Memory is bounded: at most MAX_KEYS entries per kind, oldest forgotten.
import type { Logger } from 'pino';

const MAX_KEYS = 50_000;
/** failures before backoff starts */
const BACKOFF_AFTER = 3;
const BACKOFF_MAX_MS = 8_000;
/** failures are forgotten after this long without another */
const FORGET_MS = 15 * 60_000;
const LOG_EVERY_MS = 30_000;
const MAX_USERS_PER_SOURCE = 64;
/** a source is locked out when this many different users failed from it */
const SOURCE_LOCK_USERS = 10;

interface Record {
  failures: number;
  /** sources only: the users that failed from it */
  users?: Set<string>;
  last: number;
  notBefore: number;
  lockedUntil: number;
  refusedSinceLog: number;
  logged: number;
}

export interface ThrottleOptions {
  maxFailures: number;
  lockoutMs: number;
  log: Logger;
  /** a user or a source was just locked out (the node's alarm) */
  onLockout?: (key: 'user' | 'source', id: string) => void;
}

export type ThrottleVerdict =
  | { allowed: true }
  | { allowed: false; retryAfterS: number; why: 'backoff' | 'lockout'; key: 'user' | 'source' };

export class AuthThrottle {
  private readonly users = new Map<string, Record>();
  private readonly sources = new Map<string, Record>();
  /** counters for /metrics */
  readonly stats = { failures: 0, refused: 0, lockouts: 0 };

  constructor(private readonly o: ThrottleOptions) {}

  /** May this attempt be checked at all? `exempt`: the user's binding came from this very transport address. */
  check(user: string | undefined, source: string, exempt = false): ThrottleVerdict {
    if (exempt) return { allowed: true };
    const now = Date.now();
    const s = this.blocked(this.sources.get(source), now);
    if (s) return this.refuse(s, 'source', source, now);
    if (user !== undefined) {
      const u = this.blocked(this.users.get(user), now);
      if (u) return this.refuse(u, 'user', user, now);
    }
    return { allowed: true };
  }

  failed(user: string | undefined, source: string, reason: string): void {
    this.stats.failures++;
    this.bump(this.sources, source, 'source', reason, SOURCE_LOCK_USERS, false, user ?? '');
    if (user !== undefined) this.bump(this.users, user, 'user', reason, this.o.maxFailures, true);
  }

  succeeded(user: string, source: string): void {
    this.users.delete(user);
    // Another user's success says nothing about a spray from the same address.
    this.sources.get(source)?.users?.delete(user);
  }

  private blocked(
    r: Record | undefined,
    now: number,
  ): { r: Record; until: number; why: 'backoff' | 'lockout' } | undefined {
    if (!r) return undefined;
    if (r.lockedUntil > now) return { r, until: r.lockedUntil, why: 'lockout' };
    if (r.notBefore > now) return { r, until: r.notBefore, why: 'backoff' };
    return undefined;
  }

  private refuse(
    b: { r: Record; until: number; why: 'backoff' | 'lockout' },
    key: 'user' | 'source',
    id: string,
    now: number,
  ): ThrottleVerdict {
    this.stats.refused++;
    b.r.refusedSinceLog++;
    if (now - b.r.logged >= LOG_EVERY_MS) {
      this.o.log.warn(
        { [key]: id, why: b.why, refused: b.r.refusedSinceLog, until: new Date(b.until).toISOString() },
        'SIP authentication attempts refused',
      );
      b.r.logged = now;
      b.r.refusedSinceLog = 0;
    }
    return { allowed: false, retryAfterS: Math.max(1, Math.ceil((b.until - now) / 1000)), why: b.why, key };
  }

  /** `distinct`: count different users (a source) rather than failures */
  private bump(
    map: Map<string, Record>,
    id: string,
    key: 'user' | 'source',
    reason: string,
    max: number,
    backoff: boolean,
    distinct?: string,
  ): void {
    const now = Date.now();
    let r = map.get(id);
    if (r && now - r.last > FORGET_MS && r.lockedUntil <= now) r = undefined;
    if (!r) {
      r = { failures: 0, last: now, notBefore: 0, lockedUntil: 0, refusedSinceLog: 0, logged: 0 };
      if (map.size >= MAX_KEYS) map.delete(map.keys().next().value!);
    }
    map.delete(id);
    map.set(id, r); // most recent last: the oldest is evicted first
    r.last = now;
    if (distinct === undefined) r.failures++;
    else if ((r.users ??= new Set()).size < MAX_USERS_PER_SOURCE) {
      r.users.add(distinct);
      r.failures = r.users.size;
    }
    if (r.failures >= max) {
      r.lockedUntil = now + this.o.lockoutMs;
      r.failures = 0;
      r.users?.clear();
      this.stats.lockouts++;
      this.o.log.warn(
        { [key]: id, reason, lockout_s: this.o.lockoutMs / 1000 },
        'SIP authentication locked out after repeated failures',
      );
      this.o.onLockout?.(key, id);
      r.logged = now;
    } else if (backoff && r.failures >= BACKOFF_AFTER) {
      r.notBefore = now + Math.min(BACKOFF_MAX_MS, 250 * 2 ** (r.failures - BACKOFF_AFTER));
    }
  }
}
