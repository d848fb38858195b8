// SIP messages (RFC 3261 §7): a start line, an ordered list of header fields
// with case-insensitive names (compact forms expanded on the way in), and a
// body. Header values stay strings here; grammar.ts parses the ones the call
// manager reads.

/** Compact header names (RFC 3261 §7.3.3 and later RFCs) -> full lower-case names. */
const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event',
  r: 'refer-to',
  u: 'allow-events',
  x: 'session-expires',
  b: 'referred-by',
};

/** How header names are written on the way out (others: Each-Word-Capitalized). */
const SPELLING: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'mime-version': 'MIME-Version',
};

export function canonicalName(name: string): string {
  const lower = name.toLowerCase();
  return COMPACT[lower] ?? lower;
}

function spell(lower: string): string {
  return SPELLING[lower] ?? lower.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
}

export class SipHeaders {
  private readonly list: Array<[name: string, value: string]> = [];

  static from(entries: Iterable<[string, string]>): SipHeaders {
    const h = new SipHeaders();
    for (const [n, v] of entries) h.append(n, v);
    return h;
  }

  get(name: string): string | undefined {
    const n = canonicalName(name);
    return this.list.find(([k]) => k === n)?.[1];
  }

  getAll(name: string): string[] {
    const n = canonicalName(name);
    return this.list.filter(([k]) => k === n).map(([, v]) => v);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  append(name: string, value: string): this {
    this.list.push([canonicalName(name), value]);
    return this;
  }

  /** Puts the value at the top of the header's fields (a new Via, a Record-Route). */
  prepend(name: string, value: string): this {
    this.list.unshift([canonicalName(name), value]);
    return this;
  }

  set(name: string, value: string): this {
    this.delete(name);
    return this.append(name, value);
  }

  delete(name: string): this {
    const n = canonicalName(name);
    for (let i = this.list.length - 1; i >= 0; i--) if (this.list[i]![0] === n) this.list.splice(i, 1);
    return this;
  }

  entries(): ReadonlyArray<readonly [string, string]> {
    return this.list;
  }

  clone(): SipHeaders {
    return SipHeaders.from(this.list);
  }
}

export interface SipRequest {
  kind: 'request';
  method: string;
  uri: string;
  headers: SipHeaders;
  body: Buffer;
}

export interface SipResponse {
  kind: 'response';
  status: number;
  reason: string;
  headers: SipHeaders;
  body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

/** Wire form; Content-Length always tells the body's real length. */
export function serialize(msg: SipMessage): Buffer {
  const start = msg.kind === 'request' ? `${msg.method} ${msg.uri} SIP/2.0` : `SIP/2.0 ${msg.status} ${msg.reason}`;
  const lines = [start];
  for (const [n, v] of msg.headers.entries()) if (n !== 'content-length') lines.push(`${spell(n)}: ${v}`);
  lines.push(`Content-Length: ${msg.body.length}`, '', '');
  return Buffer.concat([Buffer.from(lines.join('\r\n'), 'utf8'), msg.body]);
}

export const REASONS: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  491: 'Request Pending',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'Version Not Supported',
  513: 'Message Too Large',
};
