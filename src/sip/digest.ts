// HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617; MD5, qop=auth).
// Nonces are stateless: a timestamp signed with a per-process secret, so any
// number of challenges costs no memory and an old nonce is answered "stale".
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseDigest, quote } from './grammar.ts';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

export type DigestResult = { ok: true; user: string } | { ok: false; stale: boolean; reason: string };

export class DigestAuth {
  private readonly secret = randomBytes(16);

  constructor(
    readonly realm: string,
    private readonly nonceTtlMs = 300_000,
  ) {}

  /** The WWW-Authenticate / Proxy-Authenticate value of a challenge. */
  challenge(stale = false): string {
    return `Digest realm=${quote(this.realm)}, nonce=${quote(this.nonce(Date.now()))}, algorithm=MD5, qop="auth"${stale ? ', stale=true' : ''}`;
  }

  verify(header: string | undefined, method: string, passwordOf: (user: string) => string | undefined): DigestResult {
    if (!header) return { ok: false, stale: false, reason: 'no credentials' };
    const p = parseDigest(header);
    if (!p) return { ok: false, stale: false, reason: 'not Digest credentials' };
    const [user, realm, nonce, uri, response] = ['username', 'realm', 'nonce', 'uri', 'response'].map((k) => p.get(k));
    if (!user || !nonce || !uri || !response) return { ok: false, stale: false, reason: 'incomplete credentials' };
    if (realm !== this.realm) return { ok: false, stale: false, reason: `realm "${realm}" is not "${this.realm}"` };
    const alg = p.get('algorithm');
    if (alg && alg.toUpperCase() !== 'MD5') return { ok: false, stale: false, reason: `algorithm ${alg} not supported` };
    const age = this.nonceAge(nonce);
    if (age === undefined) return { ok: false, stale: false, reason: 'nonce not issued here' };
    const password = passwordOf(user);
    if (password === undefined) return { ok: false, stale: false, reason: `unknown user ${user}` };
    const ha1 = md5(`${user}:${this.realm}:${password}`);
    const ha2 = md5(`${method}:${uri}`);
    const qop = p.get('qop');
    const expected =
      qop === 'auth' ? md5(`${ha1}:${nonce}:${p.get('nc') ?? ''}:${p.get('cnonce') ?? ''}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
    const a = Buffer.from(expected);
    const b = Buffer.from(response.toLowerCase());
    if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, stale: false, reason: 'wrong password' };
    // A right answer to an expired nonce: the phone retries at once with a fresh one.
    if (age > this.nonceTtlMs) return { ok: false, stale: true, reason: 'nonce expired' };
    return { ok: true, user };
  }

  private nonce(ts: number): string {
    const t = ts.toString(36);
    return `${t}.${createHmac('sha256', this.secret).update(t).digest('hex').slice(0, 20)}`;
  }

  private nonceAge(nonce: string): number | undefined {
    const t = nonce.split('.')[0] ?? '';
    const ts = parseInt(t, 36);
    if (!Number.isFinite(ts) || this.nonce(ts) !== nonce) return undefined;
    return Date.now() - ts;
  }
}

/** A phone's side of Digest (tests, the load generator). */
export function digestResponse(opts: {
  user: string;
  password: string;
  method: string;
  uri: string;
  challenge: string;
  cnonce?: string;
}): string {
  const p = parseDigest(opts.challenge);
  if (!p) throw new Error(`not a Digest challenge: ${opts.challenge}`);
  const realm = p.get('realm') ?? '';
  const nonce = p.get('nonce') ?? '';
  const cnonce = opts.cnonce ?? randomBytes(8).toString('hex');
  const ha1 = md5(`${opts.user}:${realm}:${opts.password}`);
  const ha2 = md5(`${opts.method}:${opts.uri}`);
  const nc = '00000001';
  const response = md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `Digest username=${quote(opts.user)}, realm=${quote(realm)}, nonce=${quote(nonce)}, uri=${quote(opts.uri)}, response=${quote(response)}, algorithm=MD5, qop=auth, nc=${nc}, cnonce=${quote(cnonce)}`;
}
