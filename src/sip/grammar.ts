// Parsers for the header field values the call manager reads (RFC 3261 §25):
// name-addr (From, To, Contact, Route), SIP URIs, Via, CSeq, parameters and
// Digest credentials. Lenient about whitespace (LWS may appear around every
// separator), strict about structure: a value that does not parse yields
// undefined, and the caller answers 400.

/** Splits at top-level separators: not inside "quoted strings" (with \-escapes) or <angle brackets>. */
export function splitTopLevel(value: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angle = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted) {
      cur += ch;
      if (ch === '\\' && i + 1 < value.length) cur += value[++i];
      else if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === '<') angle++;
    else if (ch === '>' && angle > 0) angle--;
    else if (ch === sep && angle === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out;
}

export function unquote(s: string): string {
  const t = s.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/gs, '$1');
  return t;
}

/** `;a=b ; c ;d="x"` -> Map (names lower-cased, '' for a parameter without value). */
export function parseParams(s: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of splitTopLevel(s, ';')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) params.set(p.toLowerCase(), '');
    else params.set(p.slice(0, eq).trim().toLowerCase(), unquote(p.slice(eq + 1)));
  }
  return params;
}

export interface SipUri {
  scheme: 'sip' | 'sips';
  user: string | undefined;
  password: string | undefined;
  host: string;
  port: number | undefined;
  params: Map<string, string>;
}

export function parseUri(raw: string): SipUri | undefined {
  const m = /^(sips?):(.+)$/i.exec(raw.trim());
  if (!m) return undefined;
  let rest = m[2]!;
  // The user part may hold '?', ';' and ',' (RFC 4475 §3.1.1.2); the host starts after the last '@'.
  const at = rest.lastIndexOf('@');
  let user: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    password = colon < 0 ? undefined : userinfo.slice(colon + 1);
    rest = rest.slice(at + 1);
  }
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q);
  const semi = rest.indexOf(';');
  const hostport = semi < 0 ? rest : rest.slice(0, semi);
  const hp = parseHostPort(hostport);
  if (!hp) return undefined;
  return {
    scheme: m[1]!.toLowerCase() as 'sip' | 'sips',
    user: user === undefined ? undefined : decodeURIComponentSafe(user),
    password,
    host: hp.host,
    port: hp.port,
    params: parseParams(semi < 0 ? '' : rest.slice(semi + 1)),
  };
}

/**
 * The headers a SIP URI carries after '?' (RFC 3261 §19.1.1), by lower-case
 * name, decoded: Refer-To's Replaces for an attended transfer.
 */
export function uriHeaders(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = raw.indexOf('?');
  if (q < 0) return out;
  for (const pair of raw.slice(q + 1).split('&')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    out.set(decodeURIComponentSafe(pair.slice(0, eq)).toLowerCase(), decodeURIComponentSafe(pair.slice(eq + 1)));
  }
  return out;
}

export interface Replaces {
  callId: string;
  toTag: string;
  fromTag: string;
}

/** A Replaces value (RFC 3891 §6.1): call-id;to-tag=..;from-tag=..[;early-only]. */
export function parseReplaces(value: string): Replaces | undefined {
  const [callId, ...rest] = value.split(';');
  const params = parseParams(rest.join(';'));
  const toTag = params.get('to-tag');
  const fromTag = params.get('from-tag');
  if (!callId?.trim() || !toTag || !fromTag) return undefined;
  return { callId: callId.trim(), toTag, fromTag };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function parseHostPort(s: string): { host: string; port: number | undefined } | undefined {
  const m = /^\s*(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?:\s*:\s*([0-9]{1,5}))?\s*$/.exec(s);
  if (!m) return undefined;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: m[1]!.toLowerCase(), port };
}

export interface NameAddr {
  display: string | undefined;
  uri: string;
  params: Map<string, string>;
}

/** name-addr or addr-spec with header parameters (From, To, Contact, Route...). */
export function parseNameAddr(value: string): NameAddr | undefined {
  const v = value.trim();
  if (v === '*') return { display: undefined, uri: '*', params: new Map() };
  const lt = indexOutsideQuotes(v, '<');
  if (lt >= 0) {
    const gt = v.indexOf('>', lt);
    if (gt < 0) return undefined;
    const displayRaw = v.slice(0, lt).trim();
    if (displayRaw.startsWith('"') && !/^"(?:[^"\\]|\\.)*"$/s.test(displayRaw)) return undefined;
    const uri = v.slice(lt + 1, gt).trim();
    if (!uri) return undefined;
    return {
      display: displayRaw ? unquote(displayRaw) : undefined,
      uri,
      params: parseParams(v.slice(gt + 1).replace(/^\s*;?/, '')),
    };
  }
  if (v.includes('"')) return undefined;
  // addr-spec without brackets: parameters after the URI belong to the header.
  const semi = v.indexOf(';');
  const uri = (semi < 0 ? v : v.slice(0, semi)).trim();
  if (!uri || /\s/.test(uri)) return undefined;
  return { display: undefined, uri, params: parseParams(semi < 0 ? '' : v.slice(semi + 1)) };
}

function indexOutsideQuotes(s: string, ch: string): number {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ch) return i;
  }
  return -1;
}

export interface Via {
  transport: string;
  host: string;
  port: number | undefined;
  params: Map<string, string>;
}

export function parseVia(value: string): Via | undefined {
  const m = /^\s*SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z]+)\s+([^;]+?)\s*(?:;(.*))?$/s.exec(value);
  if (!m) return undefined;
  const hp = parseHostPort(m[2]!);
  if (!hp) return undefined;
  return { transport: m[1]!.toUpperCase(), host: hp.host, port: hp.port, params: parseParams(m[3] ?? '') };
}

/** Every Via of a message, top first (a header field may hold several). */
export function parseVias(values: string[]): Via[] | undefined {
  const out: Via[] = [];
  for (const v of values) {
    for (const part of splitTopLevel(v, ',')) {
      const via = parseVia(part);
      if (!via) return undefined;
      out.push(via);
    }
  }
  return out;
}

export interface CSeq {
  seq: number;
  method: string;
}

export function parseCSeq(value: string): CSeq | undefined {
  const m = /^\s*([0-9]{1,10})\s+([!-~]+)\s*$/.exec(value);
  if (!m) return undefined;
  const seq = Number(m[1]);
  if (seq > 2 ** 31 - 1) return undefined;
  return { seq, method: m[2]! };
}

/** `Digest realm="x", nonce="y", ...` */
export function parseDigest(value: string): Map<string, string> | undefined {
  const m = /^\s*Digest\s+(.*)$/is.exec(value);
  if (!m) return undefined;
  const out = new Map<string, string>();
  for (const part of splitTopLevel(m[1]!, ',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    out.set(part.slice(0, eq).trim().toLowerCase(), unquote(part.slice(eq + 1)));
  }
  return out;
}

export function quote(s: string): string {
  return `"${s.replace(/(["\\])/g, '\\$1')}"`;
}
