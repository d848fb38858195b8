// Parses one SIP message from bytes (a UDP datagram, or one framed message
// from a TCP stream). Every failure says why, with the status to answer
// (400, 505, 513) and, when the headers were readable, the partial message
// so the transport can answer the request instead of dropping it.
import { parseCSeq, parseVias } from './grammar.ts';
import { SipHeaders, type SipMessage } from './message.ts';

// Far above any real SIP message (a few KiB), far below what a datagram can carry.
export const MAX_MESSAGE_BYTES = 32_768;
const MAX_HEADER_LINES = 256;

export type ParseResult =
  | { ok: true; message: SipMessage }
  | { ok: false; status: 400 | 505 | 513; error: string; partial?: SipMessage };

const TOKEN = /^[A-Za-z0-9.!%*_+`'~-]+$/;
const METHOD = /^[A-Za-z0-9.!%*_+`'~-]+$/;

/** Where the header section ends: index of the blank line and the body start. */
export function headerEnd(buf: Buffer): { end: number; bodyStart: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { end: crlf, bodyStart: crlf + 4 };
  if (lf >= 0) return { end: lf, bodyStart: lf + 2 };
  return undefined;
}

export function parseSip(buf: Buffer, opts: { stream?: boolean; maxBytes?: number } = {}): ParseResult {
  const max = opts.maxBytes ?? MAX_MESSAGE_BYTES;
  // Leading CRLFs are keep-alives or stray line ends (RFC 3261 §7.5).
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  const b = start ? buf.subarray(start) : buf;
  const he = headerEnd(b);
  if (!he) {
    if (buf.length > max) return { ok: false, status: 513, error: `message of ${buf.length} bytes exceeds ${max}` };
    return { ok: false, status: 400, error: 'no blank line after the header fields' };
  }
  const lines = b.subarray(0, he.end).toString('utf8').split(/\r?\n/);
  const startLine = lines.shift()!;

  const headers = new SipHeaders();
  let count = 0;
  let pending: [string, string] | undefined;
  const flush = () => {
    if (pending) headers.append(pending[0], pending[1].trim());
    pending = undefined;
  };
  for (const line of lines) {
    if (line.startsWith(' ') || line.startsWith('\t')) {
      // Folded continuation (LWS): joins the previous field with one space.
      if (!pending) return { ok: false, status: 400, error: 'continuation line before any header field' };
      pending[1] += ` ${line.trim()}`;
      continue;
    }
    flush();
    if (++count > MAX_HEADER_LINES)
      return { ok: false, status: 400, error: `more than ${MAX_HEADER_LINES} header fields` };
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trimEnd();
    if (!name || !TOKEN.test(name))
      return { ok: false, status: 400, error: `malformed header line "${line.slice(0, 60)}"` };
    pending = [name, line.slice(colon + 1)];
  }
  flush();

  const body = b.subarray(he.bodyStart);
  let message: SipMessage;
  if (startLine.startsWith('SIP/')) {
    const m = /^SIP\/(\d+\.\d+) ([1-6]\d\d)(?: (.*))?$/.exec(startLine);
    if (!m) return { ok: false, status: 400, error: `malformed status line "${startLine.slice(0, 60)}"` };
    if (m[1] !== '2.0') return { ok: false, status: 505, error: `SIP version ${m[1]} not supported` };
    message = { kind: 'response', status: Number(m[2]), reason: m[3] ?? '', headers, body };
  } else {
    const parts = startLine.split(' ');
    if (parts.length !== 3 || !METHOD.test(parts[0]!) || !parts[1]) {
      return { ok: false, status: 400, error: `malformed request line "${startLine.slice(0, 60)}"` };
    }
    const version = /^SIP\/(\d+\.\d+)$/.exec(parts[2]!);
    if (!version) return { ok: false, status: 400, error: `malformed request line "${startLine.slice(0, 60)}"` };
    message = { kind: 'request', method: parts[0]!, uri: parts[1], headers, body };
    if (version[1] !== '2.0')
      return { ok: false, status: 505, error: `SIP version ${version[1]} not supported`, partial: message };
  }
  const fail = (error: string): ParseResult => ({ ok: false, status: 400, error, partial: message });
  // Too large: refused, but answered (513) when the headers can be read.
  if (buf.length > max)
    return { ok: false, status: 513, error: `message of ${buf.length} bytes exceeds ${max}`, partial: message };

  // Content-Length decides the body; over a stream it is mandatory (§18.3).
  const lengths = headers.getAll('content-length').map((v) => v.trim());
  if (lengths.some((v) => !/^[0-9]{1,9}$/.test(v))) return fail(`malformed Content-Length "${lengths.join(', ')}"`);
  if (new Set(lengths.map(Number)).size > 1) return fail('conflicting Content-Length fields');
  if (lengths.length) {
    const n = Number(lengths[0]);
    if (n > body.length) return fail(`Content-Length ${n} exceeds the ${body.length} bytes received`);
    message.body = body.subarray(0, n);
  } else if (opts.stream) {
    message.body = Buffer.alloc(0);
  }

  for (const h of ['call-id', 'cseq', 'from', 'to', 'via']) {
    if (!headers.get(h)?.trim())
      return fail(
        `missing ${h === 'call-id' ? 'Call-ID' : h === 'cseq' ? 'CSeq' : h[0]!.toUpperCase() + h.slice(1)} header`,
      );
  }
  const cseq = parseCSeq(headers.get('cseq')!);
  if (!cseq) return fail(`malformed CSeq "${headers.get('cseq')}"`);
  if (message.kind === 'request' && cseq.method !== message.method) {
    return fail(`CSeq method ${cseq.method} does not match request method ${message.method}`);
  }
  if (!parseVias(headers.getAll('via')))
    return fail(`malformed Via "${headers.getAll('via').join(', ').slice(0, 80)}"`);
  const mf = headers.get('max-forwards');
  if (mf !== undefined && !/^\s*[0-9]{1,10}\s*$/.test(mf)) return fail(`malformed Max-Forwards "${mf}"`);
  if (mf !== undefined && Number(mf) > 255) return fail(`Max-Forwards ${mf.trim()} exceeds 255`);
  return { ok: true, message };
}
