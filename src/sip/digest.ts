// HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616 / RFC 8760:
// SHA-256 offered beside MD5, qop=auth).
//
// Nonces carry their issue time and an HMAC over (time, realm, source
// address) with a per-process secret: challenging costs no memory, a nonce is
// good only from the address it was issued to, and an old one is answered
// "stale". Replays are refused by the nonce count: for every nonce that has
// authenticated a request, the highest nc seen is kept (bounded, and only
// for right answers, so strangers cannot grow it), and an nc not above it is
// a replay. The digest uri must be the Request-URI, so credentials for one
// request cannot carry another; or, as SIPp and some phones write it, the
// Request-URI's host and port without a user (then the answer is bound to
// this node rather than to the callee, and the nonce count still makes it
// good for one request only).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseDigest, parseUri, quote } from './grammar.ts';

/** The digest uri is the Request-URI, or its host and port alone (sip:host:port, no user, no parameters). */
function uriMatches(uri: string, requestUri: string): boolean {
  if (uri === requestUri) return true;
  const [d, q] = [parseUri(uri), parseUri(requestUri)];
  if (!d || !q || d.user !== undefined || d.params.size > 0 || /[;?]/.test(uri)) return false;
  return (
    d.scheme === q.scheme && d.host.toLowerCase() === q.host.toLowerCase() && (d.port ?? 5060) === (q.port ?? 5060)
  );
}

export type DigestAlgorithm = 'MD5' | 'SHA-256';
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'MD5'];

const H: Record<DigestAlgorithm, (s: string) => string> = {
  MD5: (s) => createHash('md5').update(s).digest('hex'),
  'SHA-256': (s) => createHash('sha256').update(s).digest('hex'),
};

export type DigestResult =
  | { ok: true; user: string }
  | {
      ok: false;
      /** the credentials were right but the nonce is too old: the phone retries at once */
      stale: boolean;
      reason: DigestFailure;
      detail: string;
      /** the user the credentials named (for throttling), when there were credentials */
      user: string | undefined;
    };

/** Why credentials were refused (a metric label: a small fixed set). */
export type DigestFailure =
  | 'none'
  | 'malformed'
  | 'realm'
  | 'algorithm'
  | 'nonce'
  | 'uri'
  | 'qop'
  | 'replay'
  | 'wrong'
  | 'stale';

export interface DigestOptions {
  nonceTtlMs: number;
  algorithms: readonly DigestAlgorithm[];
  /** nonces whose count is tracked at most (oldest forgotten first) */
  maxTrackedNonces?: number;
}

export interface VerifyRequest {
  header: string | undefined;
  method: string;
  requestUri: string;
  /** the address the request came from (IP only: phones behind NAT change ports) */
  source: string;
  passwordOf: (user: string) => string | undefined;
}

export class DigestAuth {
  private readonly secret = randomBytes(32);
  /** nonce -> highest nonce count accepted, in issue order */
  private readonly counts = new Map<string, { nc: number; issued: number }>();
  private readonly maxTracked: number;
  /** the password compared against for unknown users, so they cost the same as known ones */
  private readonly decoy = randomBytes(16).toString('hex');

  constructor(
    readonly realm: string,
    private readonly opts: DigestOptions,
  ) {
    this.maxTracked = opts.maxTrackedNonces ?? 100_000;
  }

  /** WWW-Authenticate / Proxy-Authenticate values, one per algorithm, the preferred first. */
  challenges(source: string, stale = false): string[] {
    const nonce = this.nonce(Date.now(), source);
    return this.opts.algorithms.map(
      (alg) =>
        `Digest realm=${quote(this.realm)}, nonce=${quote(nonce)}, algorithm=${alg}, qop="auth"${stale ? ', stale=true' : ''}`,
    );
  }

  verify(r: VerifyRequest): DigestResult {
    const fail = (reason: DigestFailure, detail: string, user?: string, stale = false): DigestResult => ({
      ok: false,
      stale,
      reason,
      detail,
      user,
    });
    if (!r.header) return fail('none', 'no credentials');
    const p = parseDigest(r.header);
    if (!p) return fail('malformed', 'not Digest credentials');
    const [user, realm, nonce, uri, response] = ['username', 'realm', 'nonce', 'uri', 'response'].map((k) => p.get(k));
    if (!user || !nonce || !uri || !response) return fail('malformed', 'incomplete credentials', user);
    if (realm !== this.realm) return fail('realm', `realm "${realm}" is not "${this.realm}"`, user);
    const algName = (p.get('algorithm') ?? 'MD5').toUpperCase();
    const alg = this.opts.algorithms.find((a) => a === algName);
    if (!alg) return fail('algorithm', `algorithm ${algName} not offered`, user);
    const issued = this.nonceIssued(nonce, r.source);
    if (issued === undefined) return fail('nonce', 'nonce not issued here to this address', user);
    if (!uriMatches(uri, r.requestUri))
      return fail('uri', `digest uri "${uri.slice(0, 100)}" is not the Request-URI`, user);
    if (p.get('qop') !== 'auth') return fail('qop', 'qop=auth is required', user);
    const ncText = p.get('nc') ?? '';
    const cnonce = p.get('cnonce') ?? '';
    if (!/^[0-9a-fA-F]{8}$/.test(ncText) || !cnonce)
      return fail('malformed', 'qop=auth needs nc (8 hex digits) and cnonce', user);
    const nc = parseInt(ncText, 16);
    const password = r.passwordOf(user);
    const h = H[alg];
    const ha1 = h(`${user}:${this.realm}:${password ?? this.decoy}`);
    const ha2 = h(`${r.method}:${uri}`);
    const expected = Buffer.from(h(`${ha1}:${nonce}:${ncText}:${cnonce}:auth:${ha2}`));
    const got = Buffer.from(response.toLowerCase());
    const right = expected.length === got.length && timingSafeEqual(expected, got) && password !== undefined;
    if (!right) return fail('wrong', 'wrong credentials', user);
    // A right answer to an expired nonce: the phone retries at once with a fresh one.
    if (Date.now() - issued > this.opts.nonceTtlMs) return fail('stale', 'nonce expired', user, true);
    const seen = this.counts.get(nonce);
    if (seen && nc <= seen.nc) return fail('replay', `nonce count ${ncText} already used`, user);
    this.track(nonce, nc, issued);
    return { ok: true, user };
  }

  private track(nonce: string, nc: number, issued: number): void {
    const seen = this.counts.get(nonce);
    if (seen) {
      seen.nc = nc;
      return;
    }
    this.counts.set(nonce, { nc, issued });
    if (this.counts.size <= this.maxTracked) return;
    // Expired nonces first; if all are live, the oldest goes (its phone gets a stale challenge).
    const now = Date.now();
    for (const [k, v] of this.counts) {
      if (now - v.issued > this.opts.nonceTtlMs || this.counts.size > this.maxTracked) this.counts.delete(k);
      else break;
    }
  }

  /** time . salt . MAC(time, salt, realm, source): unique per challenge, so a nonce count starts fresh with each */
  private nonce(ts: number, source: string): string {
    const t = ts.toString(36);
    const salt = randomBytes(6).toString('base64url');
    return `${t}.${salt}.${this.mac(`${t}.${salt}`, source)}`;
  }

  private mac(t: string, source: string): string {
    return createHmac('sha256', this.secret).update(`${t}|${this.realm}|${source}`).digest('base64url').slice(0, 27);
  }

  /** When the nonce was issued, if it was issued here to this source. */
  private nonceIssued(nonce: string, source: string): number | undefined {
    const m = /^([0-9a-z]{1,12})\.([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{27})$/.exec(nonce);
    if (!m) return undefined;
    const a = Buffer.from(this.mac(`${m[1]!}.${m[2]!}`, source));
    const b = Buffer.from(m[3]!);
    if (!timingSafeEqual(a, b)) return undefined;
    const ts = parseInt(m[1]!, 36);
    return ts <= Date.now() + 1000 ? ts : undefined;
  }
}

/**
 * The client's side of Digest (a trunk answering its carrier, tests, the
 * load generator). Picks the first challenge whose algorithm it knows; with
 * qop=auth offered it uses it (nonce count, client nonce), without qop it
 * answers as RFC 2617 allows for RFC 2069 servers; opaque is echoed.
 */
export function digestResponse(opts: {
  user: string;
  password: string;
  method: string;
  uri: string;
  challenge: string | string[];
  cnonce?: string;
  nc?: number;
  /** the digest uri to claim (default: uri) */
  digestUri?: string;
}): string {
  const list = Array.isArray(opts.challenge) ? opts.challenge : [opts.challenge];
  const parsed = list.map((c) => parseDigest(c)).filter((p): p is Map<string, string> => p !== undefined);
  const p = parsed.find((x) => (x.get('algorithm') ?? 'MD5').toUpperCase() in H);
  if (!p) throw new Error(`not a Digest challenge: ${list.join(' | ')}`);
  const alg = (p.get('algorithm') ?? 'MD5').toUpperCase() as DigestAlgorithm;
  const h = H[alg];
  const realm = p.get('realm') ?? '';
  const nonce = p.get('nonce') ?? '';
  const cnonce = opts.cnonce ?? randomBytes(8).toString('hex');
  const uri = opts.digestUri ?? opts.uri;
  const ha1 = h(`${opts.user}:${realm}:${opts.password}`);
  const ha2 = h(`${opts.method}:${uri}`);
  const opaque = p.get('opaque');
  const tail = opaque !== undefined ? `, opaque=${quote(opaque)}` : '';
  const base = `Digest username=${quote(opts.user)}, realm=${quote(realm)}, nonce=${quote(nonce)}, uri=${quote(uri)}`;
  const qop = p.get('qop');
  if (qop !== undefined && !qop.split(',').some((q) => q.trim() === 'auth'))
    throw new Error(`Digest challenge wants qop=${qop}, only auth is done`);
  if (qop === undefined) return `${base}, response=${quote(h(`${ha1}:${nonce}:${ha2}`))}, algorithm=${alg}${tail}`;
  const nc = (opts.nc ?? 1).toString(16).padStart(8, '0');
  const response = h(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `${base}, response=${quote(response)}, algorithm=${alg}, qop=auth, nc=${nc}, cnonce=${quote(cnonce)}${tail}`;
}
