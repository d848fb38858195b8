// The rtpengine "ng" control protocol for the media benchmark: a cookie, a
// space and a bencoded dictionary over UDP, the reply likewise. A minimal
// bencode (strings, integers, lists, dictionaries) is all it needs.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

export type Bencoded = string | number | Bencoded[] | { [k: string]: Bencoded };

export function bencode(v: Bencoded): Buffer {
  if (typeof v === 'number') return Buffer.from(`i${Math.trunc(v)}e`);
  if (typeof v === 'string') {
    const b = Buffer.from(v);
    return Buffer.concat([Buffer.from(`${b.length}:`), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([Buffer.from('l'), ...v.map(bencode), Buffer.from('e')]);
  const keys = Object.keys(v).sort();
  return Buffer.concat([Buffer.from('d'), ...keys.flatMap((k) => [bencode(k), bencode(v[k]!)]), Buffer.from('e')]);
}

export function bdecode(buf: Buffer): Bencoded {
  let i = 0;
  const next = (): Bencoded => {
    const c = String.fromCharCode(buf[i]!);
    if (c === 'i') {
      const e = buf.indexOf('e', i);
      const n = Number(buf.toString('latin1', i + 1, e));
      i = e + 1;
      return n;
    }
    if (c === 'l') {
      i++;
      const out: Bencoded[] = [];
      while (buf[i] !== 0x65) out.push(next());
      i++;
      return out;
    }
    if (c === 'd') {
      i++;
      const out: Record<string, Bencoded> = {};
      while (buf[i] !== 0x65) {
        const k = next() as string;
        out[k] = next();
      }
      i++;
      return out;
    }
    const colon = buf.indexOf(':', i);
    const len = Number(buf.toString('latin1', i, colon));
    const s = buf.toString('utf8', colon + 1, colon + 1 + len);
    i = colon + 1 + len;
    return s;
  };
  return next();
}

export class NgClient {
  private readonly sock: Socket = createSocket('udp4');
  private readonly waiting = new Map<string, (r: Record<string, Bencoded>) => void>();

  constructor(private readonly port: number) {
    this.sock.on('message', (m) => {
      const sp = m.indexOf(0x20);
      const cookie = m.toString('latin1', 0, sp);
      this.waiting.get(cookie)?.(bdecode(m.subarray(sp + 1)) as Record<string, Bencoded>);
      this.waiting.delete(cookie);
    });
  }

  request(dict: Record<string, Bencoded>, timeoutMs = 3000): Promise<Record<string, Bencoded>> {
    const cookie = randomBytes(6).toString('hex');
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(cookie);
        reject(new Error(`rtpengine did not answer ${String(dict.command)}`));
      }, timeoutMs);
      this.waiting.set(cookie, (r) => {
        clearTimeout(t);
        if (r.result !== 'ok' && r.result !== 'pong')
          reject(new Error(`rtpengine ${String(dict.command)}: ${JSON.stringify(r)}`));
        else resolve(r);
      });
      this.sock.send(Buffer.concat([Buffer.from(`${cookie} `), bencode(dict)]), this.port, '127.0.0.1');
    });
  }

  close(): void {
    this.sock.close();
  }
}
