// The SIP parser against RFC 4475 torture messages (valid ones parse with the
// right values; invalid ones fail with the right status and reason), round
// trips, and a property-based fuzz: no input may throw.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseCSeq, parseNameAddr, parseUri, parseVias } from '../../src/sip/grammar.ts';
import { serialize, type SipMessage } from '../../src/sip/message.ts';
import { parseSip } from '../../src/sip/parser.ts';

/** RFC 4475 writes messages with LF; the wire uses CRLF. */
const wire = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');

const SDP = `v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
`;

// RFC 4475 §3.1.1.1 (wsinv): folding, compact forms, odd whitespace, escaped quotes, leading zeros.
const WSINV = `INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

${SDP}`;

// §3.1.1.2 (intmeth): every token character in the method, odd but legal URI characters.
const INTMETH = `!interesting-Method0123456789_*+\`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+\`'~
To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>
From: token1~\` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439";tag=_token~1'+\`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word\`~)(><:\\/"][?}{
CSeq: 139122385 !interesting-Method0123456789_*+\`.%indeed'~
Max-Forwards: 255
extensionHeader-!.%*+_\`'~:\ufeff\u5927\u505c\u96fb
Content-Length: 0

`;

// §3.1.1.6 (dblreq-like): a response without a reason phrase (noreason, §3.1.1.x).
const NOREASON = `SIP/2.0 100
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0

`;

const INVALID: Array<[name: string, msg: string, status: number, why: RegExp]> = [
  [
    'ncl: negative Content-Length (§3.1.2.3)',
    `INVITE sip:user@example.com SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.com
From: sip:caller@example.net;tag=32394234
Call-ID: ncl.0ha0isndaksdj2193423r542w35
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw
Contact: <sip:caller@example53.example.net>
Content-Type: application/sdp
Content-Length: -999

${SDP}`,
    400,
    /malformed Content-Length/,
  ],
  [
    'clerr: Content-Length larger than the message (§3.1.2.2)',
    `INVITE sip:user@example.com SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Contact: <sip:caller@hungry.example.net>
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999

${SDP}`,
    400,
    /Content-Length 9999 exceeds/,
  ],
  [
    'scalar02: CSeq beyond 2**31 (§3.1.2.4)',
    `REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP host129.example.com;branch=z9hG4bK-39562
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=998
Max-Forwards: 70
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
CSeq: 36893488147419103232 REGISTER
Content-Length: 0

`,
    400,
    /malformed CSeq/,
  ],
  [
    'scalar: Max-Forwards 300 (§3.1.2.4)',
    `OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bK-1
To: <sip:user@example.com>
From: <sip:a@example.com>;tag=1
Max-Forwards: 300
Call-ID: mf300
CSeq: 1 OPTIONS
Content-Length: 0

`,
    400,
    /Max-Forwards 300 exceeds 255/,
  ],
  [
    'insuf: missing Call-ID and From (§3.1.2.?)',
    `INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: 0

`,
    400,
    /missing Call-ID header/,
  ],
  [
    'mismatch01: CSeq method differs from the request method (§3.1.2.?)',
    `OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.org;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
l: 0

`,
    400,
    /CSeq method INVITE does not match request method OPTIONS/,
  ],
  [
    'badvers: SIP/7.0 (§3.1.2.?)',
    `OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0

`,
    505,
    /version 7\.0 not supported/,
  ],
  [
    'lwsstart: spaces inside the request line',
    `INVITE  sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1
To: <sip:user@example.com>
From: <sip:a@example.com>;tag=1
Call-ID: lwsstart
CSeq: 1 INVITE
Content-Length: 0

`,
    400,
    /malformed request line/,
  ],
  [
    'malformed Via',
    `OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
To: <sip:user@example.com>
From: <sip:a@example.com>;tag=1
Call-ID: badvia
CSeq: 1 OPTIONS
Content-Length: 0

`,
    400,
    /malformed Via/,
  ],
];

describe('SIP parser', () => {
  it('parses the short tortuous INVITE of RFC 4475 §3.1.1.1 with every value right', () => {
    const r = parseSip(wire(WSINV));
    assert.ok(r.ok, r.ok ? '' : r.error);
    const m = r.message;
    assert.equal(m.kind, 'request');
    assert.equal(m.kind === 'request' && m.method, 'INVITE');
    const to = parseNameAddr(m.headers.get('to')!)!;
    assert.equal(to.uri, 'sip:vivekg@chair-dnrc.example.com');
    assert.equal(to.params.get('tag'), '1918181833n');
    const from = parseNameAddr(m.headers.get('from')!)!;
    assert.equal(from.display, 'J Rosenberg \\"');
    assert.equal(from.params.get('tag'), '98asjd8');
    assert.equal(m.headers.get('max-forwards'), '0068');
    assert.deepEqual(parseCSeq(m.headers.get('cseq')!), { seq: 9, method: 'INVITE' });
    const vias = parseVias(m.headers.getAll('via'))!;
    assert.deepEqual(
      vias.map((v) => [v.transport, v.host, v.params.get('branch')]),
      [
        ['UDP', '192.0.2.2', '390skdjuw'],
        ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
        ['UDP', '192.168.255.111', 'z9hG4bK30239'],
      ],
    );
    assert.equal(m.headers.get('subject'), '');
    assert.equal(m.headers.get('NEWFANGLEDHEADER'), 'newfangled value continued newfangled value');
    assert.equal(m.headers.get('UnknownHeaderWithUnusualValue'), ';;,,;;,;');
    const contact = parseNameAddr(m.headers.get('contact')!)!;
    assert.equal(contact.display, 'Quoted string ""');
    assert.deepEqual(
      [...contact.params],
      [
        ['newparam', 'newvalue'],
        ['secondparam', ''],
        ['q', '0.33'],
      ],
    );
    assert.equal(m.body.length, 150);
    assert.match(m.body.toString(), /^v=0\r\n/);
    assert.equal(parseUri('sip:vivekg@chair-dnrc.example.com;unknownparam')!.params.has('unknownparam'), true);
  });

  it('parses RFC 4475 §3.1.1.2 (token characters everywhere) and a status line without reason', () => {
    const r = parseSip(wire(INTMETH));
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.equal(r.message.kind === 'request' && r.message.method, "!interesting-Method0123456789_*+`.%indeed'~");
    const uri = parseUri(r.message.kind === 'request' ? r.message.uri : '')!;
    assert.equal(uri.host, 'example.com');
    assert.equal(uri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    const from = parseNameAddr(r.message.headers.get('from')!)!;
    assert.equal(from.params.get('tag'), "_token~1'+`*%!-.");
    assert.equal(r.message.headers.get('call-id'), 'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
    const n = parseSip(wire(NOREASON));
    assert.ok(n.ok);
    assert.equal(n.message.kind === 'response' && n.message.status, 100);
  });

  for (const [name, msg, status, why] of INVALID) {
    it(`rejects ${name}`, () => {
      const r = parseSip(wire(msg));
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.status, status);
        assert.match(r.error, why);
      }
    });
  }

  it('rejects oversized messages with 513', () => {
    const r = parseSip(Buffer.alloc(40_000, 'a'));
    assert.equal(!r.ok && r.status, 513);
  });

  it('round-trips what it serializes', () => {
    const r = parseSip(wire(WSINV));
    assert.ok(r.ok);
    const again = parseSip(serialize(r.message));
    assert.ok(again.ok);
    const strip = (m: SipMessage) => ({
      ...m,
      headers: [...m.headers.entries()].filter(([n]) => n !== 'content-length'),
    });
    assert.deepEqual(strip(again.message), strip(r.message));
  });

  it('never throws, whatever the bytes (property-based fuzz)', () => {
    const lines = fc.array(
      fc.oneof(
        fc.constantFrom(
          'Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1',
          'CSeq: 1 INVITE',
          'Call-ID: x',
          'From: <sip:a@b>;tag=1',
          'To: sip:c@d',
          'l: 5',
          'Content-Length: 99999999999',
          ' folded',
          'v: SIP/2.0/TCP h',
          'm: "x\\"" <sip:y>',
        ),
        fc.string({ maxLength: 80 }),
      ),
      { maxLength: 20 },
    );
    fc.assert(
      fc.property(
        fc.constantFrom('INVITE sip:a@b SIP/2.0', 'SIP/2.0 200 OK', 'REGISTER sip:b SIP/2.0', ''),
        lines,
        fc.uint8Array({ maxLength: 200 }),
        (start, hs, tail) => {
          const buf = Buffer.concat([Buffer.from(`${[start, ...hs].join('\r\n')}\r\n\r\n`), Buffer.from(tail)]);
          const r = parseSip(buf);
          if (r.ok) {
            // Whatever parses must serialize and parse again.
            assert.ok(parseSip(serialize(r.message)).ok);
          }
        },
      ),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => void parseSip(Buffer.from(bytes))),
      { numRuns: 3000 },
    );
  });
});
